package httpx

import "go.uber.org/fx"

// AsRoutes annotates a constructor returning []Route so that its routes are
// served by the application's HTTP server.
func AsRoutes(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"http.routes,flatten"`))
}
