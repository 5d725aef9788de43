// Package wronghandler handles a topic with a function for another payload.
package wronghandler

import (
	"context"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/topics"
)

var _ = bus.NewHandler("customer.wrong", topics.UserRegistered,
	func(context.Context, bus.Event[topics.UserSuspendedV1]) error { return nil })
