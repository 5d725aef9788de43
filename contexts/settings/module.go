package settings

import (
	"context"
	"fmt"
	"log/slog"

	"go.uber.org/fx"

	"github.com/example/monolith/contexts/settings/internal/app"
	"github.com/example/monolith/contexts/settings/internal/ports"
	"github.com/example/monolith/contexts/settings/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/setting"
)

// Module is the settings context's wiring: the only thing cmd/app refers to.
// It declares no settings of its own, and stores those every other context
// declares with setting.Declare.
var Module = fx.Module("settings",
	db.ProvideMigrations(store.Migrations),
	fx.Provide(
		fx.Private,
		newService,
	),
	fx.Provide(httpx.AsRoutes(ports.Routes)),
)

// newService builds the service and, once the app starts, stores every
// declared schema with it. Every instance does: storing a schema is
// idempotent, and it republishes the stored values that this instance's
// caches, fresh from their defaults, need. Only the serving app builds the
// service (for its routes), so commands without a broker store nothing. The
// bus, built first as a dependency, has started by the time the hook runs,
// and the migrations were applied while the app was built.
func newService(lc fx.Lifecycle, d *db.DB, pub bus.Publisher, logger *slog.Logger, declared setting.Declared) *app.Service {
	s := app.NewService(d, pub, logger)
	lc.Append(fx.StartHook(func(ctx context.Context) error {
		for _, schema := range declared.Schemas {
			if err := s.StoreSchema(ctx, schema); err != nil {
				return fmt.Errorf("store the settings %s declares: %w", schema.Context, err)
			}
		}
		return nil
	}))
	return s
}
