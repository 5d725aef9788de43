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

// onUserRegistered creates the registered user's customer.
func onUserRegistered(d *db.DB, s *app.Service) bus.Handler {
	return outbox.NewHandler(d, "customer.create-profile", topics.UserRegistered,
		func(ctx context.Context, e bus.Event[topics.UserRegisteredV1]) error {
			err := s.CreateProfile(ctx, e.Payload.UserID, e.Payload.Email, e.Payload.Name)
			// An event without a user id will never become valid.
			if errors.As(err, new(domain.ValidationError)) {
				return bus.Permanent(err)
			}
			return err
		})
}
