package alpha

import (
	"context"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/topics"
)

func publish(ctx context.Context, p bus.Publisher, topic bus.Topic[topics.AlphaThingV1]) error {
	_ = bus.Publish(ctx, p, topics.AlphaThing, "a1", topics.AlphaThingV1{}) // its own topic
	_, _ = bus.NewMessage(ctx, topic, "a1", topics.AlphaThingV1{})
	return bus.Publish(ctx, p, topics.BetaThing, "b1", topics.BetaThingV1{})
}
