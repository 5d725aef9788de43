package httpx

import (
	"reflect"
	"runtime"
	"strings"

	"go.uber.org/fx"
)

var routesType = reflect.TypeFor[[]Route]()

// AsRoutes annotates a constructor returning []Route (and optionally an
// error) so that its routes are served by the application's HTTP server.
// Each route records the constructor's package in [Route.Package].
func AsRoutes(constructor any) any {
	fn := reflect.ValueOf(constructor)
	if fn.Kind() == reflect.Func && fn.Type().NumOut() > 0 && fn.Type().Out(0) == routesType {
		constructor = recordPackage(fn).Interface()
	}
	// Anything else is left for fx to reject with its own error.
	return fx.Annotate(constructor, fx.ResultTags(`group:"http.routes,flatten"`))
}

// recordPackage wraps fn, of the same signature, to set Package on the
// routes it returns.
func recordPackage(fn reflect.Value) reflect.Value {
	pkg := packageOf(runtime.FuncForPC(fn.Pointer()).Name())
	return reflect.MakeFunc(fn.Type(), func(args []reflect.Value) []reflect.Value {
		call := fn.Call
		if fn.Type().IsVariadic() {
			call = fn.CallSlice
		}
		out := call(args)
		routes := out[0].Interface().([]Route)
		for i := range routes {
			routes[i].Package = pkg
		}
		return out
	})
}

// packageOf is the import path in a function's symbol name, such as
// example.com/m/contexts/customer/internal/ports for
// example.com/m/contexts/customer/internal/ports.Routes or for a closure
// (…/poison.Module.func1) or method (…/ports.(*T).Routes) of that package.
func packageOf(symbol string) string {
	slash := strings.LastIndex(symbol, "/")
	if dot := strings.Index(symbol[slash+1:], "."); dot >= 0 {
		return symbol[:slash+1+dot]
	}
	return symbol
}
