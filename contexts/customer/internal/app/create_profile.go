package app

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/example/monolith/contexts/customer/internal/domain"
	"github.com/example/monolith/contexts/customer/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/topics"
)

// CreateProfile creates the customer of a newly registered user, in the
// current default tier, and publishes customer.customer.created in the same
// transaction. When the user already has a customer it neither creates nor
// publishes anything.
func (s *Service) CreateProfile(ctx context.Context, userID, email, name string) error {
	tier := domain.Tier(s.settings.String(SettingDefaultTier))
	c, err := domain.NewCustomer(uuid.Must(uuid.NewV7()).String(), userID, email, name, tier, db.Now())
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		inserted, err := store.New(s.db.Q(ctx)).CreateCustomer(ctx, store.CreateCustomerParams{
			ID: c.ID, UserID: c.UserID, Email: c.Email, Name: c.Name, Tier: string(c.Tier),
			Active: c.Active, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		})
		if err != nil || inserted == 0 {
			return err
		}
		return bus.Publish(ctx, outbox.Publisher(tx), topics.CustomerCreated, c.ID, topics.CustomerCreatedV1{
			CustomerID: c.ID, UserID: c.UserID, Email: c.Email, Name: c.Name, Tier: string(c.Tier),
		})
	})
	if err != nil {
		return fmt.Errorf("create customer of user %s: %w", userID, err)
	}
	return nil
}
