// Package control is the correct use the other fixtures get wrong: it must
// compile, or their failures would prove nothing.
package control

import (
	"context"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/topics"
)

func publish(ctx context.Context, p bus.Publisher) error {
	return bus.Publish(ctx, p, topics.UserRegistered, "u1", topics.UserRegisteredV1{UserID: "u1"})
}

var _ = bus.NewHandler("customer.right", topics.UserRegistered,
	func(context.Context, bus.Event[topics.UserRegisteredV1]) error { return nil })
