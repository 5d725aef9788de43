package ports

import (
	"context"

	"github.com/example/monolith/contexts/customer/internal/app"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/topics"
)

// onUserSuspended deactivates the suspended user's customer. While the
// user's registration has not been handled yet there is no customer to
// deactivate: the ordinary error makes the bus retry.
func onUserSuspended(d *db.DB, s *app.Service) bus.Handler {
	return outbox.NewHandler(d, "customer.deactivate-on-user-suspended", topics.UserSuspended,
		func(ctx context.Context, e bus.Event[topics.UserSuspendedV1]) error {
			return s.DeactivateUserCustomer(ctx, e.Payload.UserID)
		})
}
