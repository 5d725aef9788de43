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

// WinDeal records a deal an active customer won and publishes
// customer.deal.won.
func (s *Service) WinDeal(ctx context.Context, customerID string, amountCents int64, currency string) (domain.Deal, error) {
	d, err := domain.NewDeal(uuid.Must(uuid.NewV7()).String(), customerID, amountCents, currency, db.Now())
	if err != nil {
		return domain.Deal{}, err
	}
	err = s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		q := store.New(s.db.Q(ctx))
		c, err := loadCustomer(ctx, q, customerID)
		if err != nil {
			return err
		}
		// A deactivation committing meanwhile may let this deal in, as if
		// the deal had come a moment earlier.
		if err := c.CanWinDeals(); err != nil {
			return err
		}
		err = q.CreateDeal(ctx, store.CreateDealParams{
			ID: d.ID, CustomerID: d.CustomerID, AmountCents: d.AmountCents, Currency: d.Currency, WonAt: d.WonAt,
		})
		if err != nil {
			return err
		}
		return bus.Publish(ctx, outbox.Publisher(tx), topics.DealWon, d.ID, topics.DealWonV1{
			DealID: d.ID, CustomerID: d.CustomerID, AmountCents: d.AmountCents, Currency: d.Currency,
		})
	})
	if err != nil {
		return domain.Deal{}, fmt.Errorf("win deal for customer %s: %w", customerID, err)
	}
	return d, nil
}
