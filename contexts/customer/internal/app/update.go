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

// Update changes a customer's name and/or tier (nil leaves it as it is) and
// publishes customer.customer.updated.
func (s *Service) Update(ctx context.Context, id string, name, tier *string) (domain.Customer, error) {
	changes, err := domain.NewChanges(name, tier)
	if err != nil {
		return domain.Customer{}, err
	}
	params := store.UpdateCustomerDetailsParams{ID: id, UpdatedAt: db.Now()}
	if changes.Name != nil {
		params.Name = sql.NullString{String: *changes.Name, Valid: true}
	}
	if changes.Tier != nil {
		params.Tier = sql.NullString{String: string(*changes.Tier), Valid: true}
	}
	var c domain.Customer
	err = s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		// One statement that writes only the changed columns and returns the
		// result: no read-modify-write that could undo a concurrent deactivation.
		row, err := store.New(s.db.Q(ctx)).UpdateCustomerDetails(ctx, params)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("update customer %s: %w", id, err)
		}
		c = toDomain(row)
		return bus.Publish(ctx, outbox.Publisher(tx), topics.CustomerUpdated, c.ID, updatedEvent(c))
	})
	return c, err
}
