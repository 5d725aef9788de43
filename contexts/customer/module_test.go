package customer_test

import (
	"slices"
	"testing"

	"go.uber.org/fx"

	"github.com/example/monolith/contexts/customer"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
)

// TestModuleContributes runs the module as cmd/app does and checks what it
// adds to the application's groups, beyond what the platform contributes.
func TestModuleContributes(t *testing.T) {
	handlers, routes, migrations := contributions(t, customer.Module)
	platformHandlers, platformRoutes, platformMigrations := contributions(t)
	if got, want := without(handlers, platformHandlers), []string{"customer.count-won-deal", "customer.create-profile", "customer.deactivate-on-user-suspended", "customer.refresh-settings"}; !slices.Equal(got, want) {
		t.Errorf("handlers = %v, want %v", got, want)
	}
	if got, want := without(routes, platformRoutes), []string{"GET /api/customers", "GET /api/customers/{id}", "PATCH /api/customers/{id}", "POST /api/customers/{id}/deals"}; !slices.Equal(got, want) {
		t.Errorf("routes = %v, want %v", got, want)
	}
	if got, want := without(migrations, platformMigrations), []string{"customer"}; !slices.Equal(got, want) {
		t.Errorf("migrations = %v, want customer's", got)
	}
}

// contributions are the names of the handlers registered on the bus, the
// routes served and the contexts of the migrations applied by an
// application made of modules, each sorted.
func contributions(t *testing.T, modules ...fx.Option) (handlers, routes, migrations []string) {
	t.Helper()
	collect := fx.Invoke(fx.Annotate(func(rs []httpx.Route, ms []db.Migrations) {
		for _, r := range rs {
			routes = append(routes, r.Pattern)
		}
		for _, m := range ms {
			migrations = append(migrations, m.Context)
		}
	}, fx.ParamTags(`group:"http.routes"`, `group:"db.migrations"`)))
	h := contexttest.Start(t, db.DriverSQLite, append(modules, collect)...)
	for _, hd := range h.Bus.Handlers() {
		handlers = append(handlers, hd.Name())
	}
	slices.Sort(handlers)
	slices.Sort(routes)
	slices.Sort(migrations)
	return handlers, routes, migrations
}

// without is all but the elements of others.
func without(all, others []string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(s string) bool { return slices.Contains(others, s) })
}
