package settings

import (
	"go.uber.org/fx"

	"github.com/example/monolith/contexts/settings/internal/app"
	"github.com/example/monolith/contexts/settings/internal/ports"
	"github.com/example/monolith/contexts/settings/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
)

// Module is the settings context's wiring: the only thing cmd/app refers to.
// It declares no settings of its own.
var Module = fx.Module("settings",
	db.ProvideMigrations(store.Migrations),
	fx.Provide(
		fx.Private,
		app.NewService,
	),
	fx.Provide(httpx.AsRoutes(ports.Routes)),
	fx.Provide(bus.AsHandlers(ports.Handlers)),
)
