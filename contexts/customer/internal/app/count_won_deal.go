package app

import (
	"context"
	"fmt"

	"github.com/example/monolith/contexts/customer/internal/domain"
	"github.com/example/monolith/contexts/customer/internal/store"
)

// CountWonDeal adds one to the deals the customer won. It is not
// idempotent: running it twice for one deal counts the deal twice, so its
// handler runs it once per customer.deal.won through outbox.NewHandler's
// processed-events record. It returns domain.ErrNotFound when the customer
// does not exist.
func (s *Service) CountWonDeal(ctx context.Context, customerID string) error {
	n, err := store.New(s.db.Q(ctx)).CountWonDeal(ctx, customerID)
	if err == nil && n == 0 {
		err = domain.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("count a won deal of customer %s: %w", customerID, err)
	}
	return nil
}
