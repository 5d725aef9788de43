package identity

import (
	"go.uber.org/fx"

	"github.com/example/monolith/contexts/identity/internal/app"
	"github.com/example/monolith/contexts/identity/internal/ports"
	"github.com/example/monolith/contexts/identity/internal/store"
	"github.com/example/monolith/platform/config"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/setting"
)

// Module is identity's wiring: the only thing cmd/app refers to.
var Module = fx.Module("identity",
	config.Section("identity", app.DefaultConfig()),
	db.ProvideMigrations(store.Migrations),
	setting.Declare(app.Settings),
	fx.Provide(
		fx.Private,
		app.NewService,
	),
	fx.Provide(httpx.AsRoutes(ports.Routes)),
)
