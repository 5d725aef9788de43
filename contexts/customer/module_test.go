package customer_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"go.uber.org/fx"

	"github.com/example/monolith/contexts/customer"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/httpx"
)

// TestModuleContributes builds the module the way cmd/app does and checks
// what it adds to the application's groups.
func TestModuleContributes(t *testing.T) {
	b, err := bus.New(context.Background(), bus.DefaultConfig(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	var (
		handlers, routes []string
		migrations       []db.Migrations
	)
	app := fx.New(
		fx.NopLogger,
		fx.Supply(dbtest.Open(t, db.DriverSQLite), slog.Default(), fx.Annotate(b, fx.As(new(bus.Publisher)))),
		customer.Module,
		fx.Invoke(fx.Annotate(func(hs []bus.Handler, rs []httpx.Route, ms []db.Migrations) error {
			for _, h := range hs {
				handlers = append(handlers, h.Name())
			}
			for _, r := range rs {
				routes = append(routes, r.Pattern)
			}
			migrations = ms
			return b.Register(hs...) // validates the names
		}, fx.ParamTags(`group:"bus.handlers"`, `group:"http.routes"`, `group:"db.migrations"`))),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(handlers)
	slices.Sort(routes)
	if want := []string{"customer.create-profile", "customer.deactivate-on-user-suspended", "customer.refresh-settings"}; !slices.Equal(handlers, want) {
		t.Errorf("handlers = %v, want %v", handlers, want)
	}
	if want := []string{"GET /api/customers", "GET /api/customers/{id}", "PATCH /api/customers/{id}", "POST /api/customers/{id}/deals"}; !slices.Equal(routes, want) {
		t.Errorf("routes = %v, want %v", routes, want)
	}
	if len(migrations) != 1 || migrations[0].Context != "customer" {
		t.Errorf("migrations = %+v, want customer's", migrations)
	}
}
