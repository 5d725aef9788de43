package beta

import (
	_ "github.com/example/monolith/cmd/app"
	"github.com/example/monolith/platform/bus"
)

var _ = bus.NewHandler[int]
var _ = bus.NewPatternHandler
