package httpx_test

import (
	"errors"
	"net/http"
	"testing"

	"go.uber.org/fx"

	"github.com/example/monolith/platform/httpx"
)

func someRoutes() []httpx.Route {
	return []httpx.Route{{Pattern: "GET /a", Handler: http.NotFoundHandler()}}
}

// TestAsRoutesRecordsTheConstructorsPackage checks that every route knows
// the package of the constructor it came from, however it is written.
func TestAsRoutesRecordsTheConstructorsPackage(t *testing.T) {
	const pkg = "github.com/example/monolith/platform/httpx_test"
	var routes []httpx.Route
	app := fx.New(fx.NopLogger,
		fx.Provide(
			httpx.AsRoutes(someRoutes),
			httpx.AsRoutes(func() ([]httpx.Route, error) {
				return []httpx.Route{{Pattern: "GET /b", Handler: http.NotFoundHandler()}}, nil
			}),
		),
		fx.Invoke(fx.Annotate(func(rs []httpx.Route) { routes = rs }, fx.ParamTags(`group:"http.routes"`))),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if len(routes) != 2 {
		t.Fatalf("got %d routes, want 2", len(routes))
	}
	for _, r := range routes {
		if r.Package != pkg {
			t.Errorf("route %s: Package %q, want %q", r.Pattern, r.Package, pkg)
		}
	}
	// A constructor's error still stops the app.
	failing := fx.New(fx.NopLogger,
		fx.Provide(httpx.AsRoutes(func() ([]httpx.Route, error) { return nil, errors.New("no routes today") })),
		fx.Invoke(fx.Annotate(func([]httpx.Route) {}, fx.ParamTags(`group:"http.routes"`))),
	)
	if err := failing.Err(); err == nil {
		t.Fatal("a failing routes constructor did not stop the app")
	}
}
