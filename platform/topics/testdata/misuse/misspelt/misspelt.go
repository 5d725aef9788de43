// Package misspelt publishes to a topic that is not declared.
package misspelt

import (
	"context"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/topics"
)

func publish(ctx context.Context, p bus.Publisher) error {
	return bus.Publish(ctx, p, topics.UserRegistred, "u1", topics.UserRegisteredV1{UserID: "u1"})
}
