// Package app composes the platform and the bounded contexts into the
// application, and runs its commands.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/config"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/poison"
)

// platform provides what contexts build on: configuration sections, logger,
// metrics registry, database, bus, outbox and poison store.
func platform(cfg Config, logger *slog.Logger) fx.Option {
	return fx.Options(
		fx.Supply(cfg.HTTP, cfg.Database, cfg.Bus, cfg.Outbox, cfg.Contexts, logger),
		// First of the invokes, so a bad context section stops every
		// command before the database or the broker is touched.
		config.CheckSections,
		fx.Provide(
			newRegistry,
			func(r *prometheus.Registry) prometheus.Registerer { return r },
			newDB,
		),
		bus.Module,
		outbox.Module,
		poison.Module,
		fx.NopLogger,
	)
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func newDB(lc fx.Lifecycle, cfg db.Config) (*db.DB, error) {
	d, err := db.Open(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(d.Close))
	return d, nil
}

// migrate applies every context's migrations; every command runs it.
var migrate = fx.Invoke(fx.Annotate(
	func(d *db.DB, sets []db.Migrations) error { return d.Migrate(context.Background(), sets...) },
	fx.ParamTags(``, `group:"db.migrations"`),
))

// Serve runs the application until ctx is done: migrations, the bus with
// every context's handlers, and the HTTP server. On stop, HTTP drains first,
// then the bus closes.
func Serve(ctx context.Context, cfg Config, logger *slog.Logger, contexts ...fx.Option) error {
	app := fx.New(serve(cfg, logger, contexts...))
	if err := app.Err(); err != nil {
		return err
	}
	if err := app.Start(context.Background()); err != nil {
		return err
	}
	logger.Info("Started", "http", cfg.HTTP.Addr, "bus", cfg.Bus.Adapter, "database", cfg.Database.Driver)
	var failed error
	select {
	case <-ctx.Done():
	case sig := <-app.Wait():
		if sig.ExitCode != 0 {
			failed = fmt.Errorf("stopped after a fatal error (exit code %d)", sig.ExitCode)
		}
	}
	logger.Info("Stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancel()
	return errors.Join(failed, app.Stop(stopCtx))
}

// Options are the serving application without its HTTP listener: the
// platform, the contexts, migrations, every handler on the bus, the outbox
// relay, and the HTTP handler of every route, provided as http.Handler.
// Serve listens with that handler; tests serve it themselves.
func Options(cfg Config, logger *slog.Logger, contexts ...fx.Option) fx.Option {
	return fx.Options(
		platform(cfg, logger),
		fx.Options(contexts...),
		migrate,
		bus.RegisterHandlers,
		outbox.Run,
		fx.Provide(newHTTPHandler),
		fx.StartTimeout(cfg.Bus.ConnectTimeout+time.Minute),
		fx.StopTimeout(cfg.HTTP.ShutdownTimeout+cfg.Bus.CloseTimeout+5*time.Second),
	)
}

func serve(cfg Config, logger *slog.Logger, contexts ...fx.Option) fx.Option {
	return fx.Options(Options(cfg, logger, contexts...), fx.Invoke(serveHTTP))
}

// Validate checks that the serving app's dependency graph is complete,
// without running a constructor (so without database or broker).
func Validate(cfg Config, logger *slog.Logger, contexts ...fx.Option) error {
	return fx.ValidateApp(serve(cfg, logger, contexts...))
}

// Migrate applies the migrations and returns; it needs no broker.
func Migrate(cfg Config, logger *slog.Logger, contexts ...fx.Option) error {
	app := fx.New(platform(cfg, logger), fx.Options(contexts...), migrate)
	if err := app.Err(); err != nil {
		return err
	}
	logger.Info("Migrations applied", "database", cfg.Database.Driver)
	// Start runs no hook but the database's; Stop closes it.
	if err := app.Start(context.Background()); err != nil {
		return err
	}
	return app.Stop(context.Background())
}

type handlerParams struct {
	fx.In
	Routes   []httpx.Route `group:"http.routes"`
	DB       *db.DB
	Bus      *bus.Bus
	Registry *prometheus.Registry
	Logger   *slog.Logger
}

func newHTTPHandler(p handlerParams) (http.Handler, error) {
	checks := []httpx.Check{{Name: "database", Check: p.DB.PingContext}, {Name: "bus", Check: p.Bus.Check}}
	return httpx.NewHandler(p.Routes, checks, p.Registry, p.Logger)
}

type httpParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    httpx.Config
	Handler   http.Handler
	Logger    *slog.Logger
	Shutdown  fx.Shutdowner
}

func serveHTTP(p httpParams) {
	srv := &http.Server{Addr: p.Config.Addr, Handler: p.Handler, ReadHeaderTimeout: 10 * time.Second}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", p.Config.Addr)
			if err != nil {
				return fmt.Errorf("http: %w", err)
			}
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					p.Logger.Error("HTTP server failed", "error", err)
					_ = p.Shutdown.Shutdown(fx.ExitCode(1))
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, p.Config.ShutdownTimeout)
			defer cancel()
			return srv.Shutdown(ctx)
		},
	})
}

// NewLogger builds the process logger; records logged with a handler's or a
// request's context carry the event and correlation ids.
func NewLogger(cfg LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated with the config
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(bus.NewLogHandler(h))
}
