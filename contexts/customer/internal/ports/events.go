package ports

import (
	"context"
	"errors"

	"github.com/example/monolith/contexts/customer/internal/app"
	"github.com/example/monolith/contexts/customer/internal/domain"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/topics"
)

// Handlers are customer's event handlers. Every adapter may deliver an
// event more than once: outbox.NewHandler applies each event once.
func Handlers(d *db.DB, s *app.Service) []bus.Handler {
	return []bus.Handler{
		outbox.NewHandler(d, "customer.create-profile", topics.UserRegistered,
			func(ctx context.Context, e bus.Event[topics.UserRegisteredV1]) error {
				err := s.CreateProfile(ctx, e.Payload.UserID, e.Payload.Email, e.Payload.Name)
				// An event without a user id will never become valid.
				if errors.As(err, new(domain.ValidationError)) {
					return bus.Permanent(err)
				}
				return err
			}),
		// While the user's registration has not been handled yet there is no
		// customer to deactivate: the ordinary error makes the bus retry.
		outbox.NewHandler(d, "customer.deactivate-on-user-suspended", topics.UserSuspended,
			func(ctx context.Context, e bus.Event[topics.UserSuspendedV1]) error {
				return s.DeactivateUserCustomer(ctx, e.Payload.UserID)
			}),
	}
}
