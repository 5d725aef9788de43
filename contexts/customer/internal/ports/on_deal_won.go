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

// onDealWon counts the deals a customer won. Adding one is not idempotent
// and no constraint absorbs a second delivery: only the processed-events
// record of outbox.NewHandler keeps a redelivered event from counting twice.
func onDealWon(d *db.DB, s *app.Service) bus.Handler {
	return outbox.NewHandler(d, "customer.count-won-deal", topics.DealWon,
		func(ctx context.Context, e bus.Event[topics.DealWonV1]) error {
			err := s.CountWonDeal(ctx, e.Payload.CustomerID)
			// The deal was stored with a reference to its customer, and
			// customers are never deleted: a missing one will not appear.
			if errors.Is(err, domain.ErrNotFound) {
				return bus.Permanent(err)
			}
			return err
		})
}
