package bus

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
)

// Module provides the application's *Bus, also as its Publisher, built with
// the Options it provides (decorate them to change them), which report to
// every Observer contributed with [AsObserver] and reschedule through the
// Scheduler provided, if any (the outbox's). The bus connects
// when first needed, starts with the app and closes (draining in-flight
// handlers) when it stops.
var Module = fx.Module("bus",
	fx.Provide(
		fx.Annotate(
			func(logger *slog.Logger, reg prometheus.Registerer, observers []Observer, scheduler Scheduler) Options {
				return Options{Logger: logger, Registerer: reg, Observers: observers, Scheduler: scheduler}
			},
			fx.ParamTags(``, ``, `group:"bus.observers"`, `optional:"true"`),
		),
		newForApp,
		func(b *Bus) Publisher { return b },
	),
)

// RegisterHandlers registers every handler contributed with [AsHandlers],
// and fails if bus.handlers names a handler that is not among them; the
// serving app invokes it, commands that only need the database do not.
var RegisterHandlers = fx.Invoke(fx.Annotate(
	func(b *Bus, hs []Handler) error {
		if err := b.Register(hs...); err != nil {
			return err
		}
		return b.checkHandlerKeys()
	},
	fx.ParamTags(``, `group:"bus.handlers"`),
))

// AsHandlers annotates a constructor returning []Handler so that its
// handlers are registered on the application's bus.
func AsHandlers(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"bus.handlers,flatten"`))
}

func newForApp(lc fx.Lifecycle, cfg Config, opts Options) (*Bus, error) {
	b, err := New(context.Background(), cfg, opts)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{
		OnStart: b.Start,
		OnStop:  func(context.Context) error { return b.Close() },
	})
	return b, nil
}
