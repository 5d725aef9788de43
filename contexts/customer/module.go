package customer

import (
	"go.uber.org/fx"

	"github.com/example/monolith/contexts/customer/internal/app"
	"github.com/example/monolith/contexts/customer/internal/ports"
	"github.com/example/monolith/contexts/customer/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/setting"
)

// Module is customer's wiring: the only thing cmd/app refers to.
var Module = fx.Module("customer",
	db.ProvideMigrations(store.Migrations),
	setting.Declare(app.Settings),
	fx.Provide(
		fx.Private,
		app.NewService,
	),
	fx.Provide(httpx.AsRoutes(ports.Routes)),
	fx.Provide(bus.AsHandlers(ports.Handlers)),
)
