package setting

import (
	"context"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/topics"
)

func announce(ctx context.Context) error {
	_, err := bus.NewMessage(ctx, topics.AlphaThing, "a1", topics.AlphaThingV1{})
	return err
}
