// Package wrongpayload publishes a payload of another topic's type.
package wrongpayload

import (
	"context"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/topics"
)

func publish(ctx context.Context, p bus.Publisher) error {
	return bus.Publish(ctx, p, topics.UserRegistered, "u1", topics.UserSuspendedV1{UserID: "u1"})
}
