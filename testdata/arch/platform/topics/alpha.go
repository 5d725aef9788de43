package topics

import "github.com/example/monolith/platform/bus"

var AlphaThing = bus.NewTopic[AlphaThingV1]("alpha.thing.happened", 1)

var Misfiled = bus.NewTopic[MisfiledV1]("beta.thing.misfiled", 1)
