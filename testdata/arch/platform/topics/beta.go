package topics

import "github.com/example/monolith/platform/bus"

var BetaThing = bus.NewTopic[BetaThingV1]("beta.thing.happened", 1)
