package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/example/monolith/contexts/customer/internal/domain"
	"github.com/example/monolith/contexts/customer/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/topics"
)

// DeactivateUserCustomer makes the customer of a suspended user inactive and
// publishes customer.customer.updated in the same transaction. A customer
// already inactive is left alone and nothing is published. It returns
// domain.ErrNotFound while the user has no customer yet: the registration
// may still be on its way, and the caller retries.
func (s *Service) DeactivateUserCustomer(ctx context.Context, userID string) error {
	err := s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		q := store.New(s.db.Q(ctx))
		row, err := q.DeactivateCustomerOfUser(ctx, store.DeactivateCustomerOfUserParams{UserID: userID, UpdatedAt: db.Now()})
		if err == nil {
			c := toDomain(row)
			return bus.Publish(ctx, outbox.Publisher(tx), topics.CustomerUpdated, c.ID, updatedEvent(c))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Nothing updated: the customer is missing or already inactive.
		_, err = q.GetCustomerByUserID(ctx, userID)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deactivate customer of user %s: %w", userID, err)
	}
	return nil
}
