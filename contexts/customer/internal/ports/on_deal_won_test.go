package ports_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/example/monolith/contexts/customer"
	"github.com/example/monolith/contexts/customer/internal/app"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/topics"
)

// TestWonDealIsCountedOnTheCustomer: a deal won over HTTP reaches
// customer.count-won-deal through the outbox and the bus, and the customer's
// JSON shows it.
func TestWonDealIsCountedOnTheCustomer(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		id := newCustomer(t, h)
		for range 2 {
			if r := h.Do(t, "POST", "/api/customers/"+id+"/deals", map[string]any{"amount_cents": 100, "currency": "EUR"}); r.Status != http.StatusCreated {
				t.Fatalf("POST deals = %d %s", r.Status, r.Raw)
			}
		}
		contexttest.Eventually(t, "deals_won to reach 2", func() bool {
			return h.Do(t, "GET", "/api/customers/"+id, nil).Body["deals_won"] == float64(2)
		})
		h.NonePoisoned(t)
	}, customer.Module)
}

// TestRedeliveredDealWonCountsOnce: adding one to deals_won is not
// idempotent and no constraint absorbs a second delivery, so only the
// handler's processed-events record makes it exactly-once. One event
// delivered three times counts once; once its record is deleted, the next
// delivery counts again, as does the use case run twice.
func TestRedeliveredDealWonCountsOnce(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		ctx := context.Background()
		svc := service(h)
		id := newCustomer(t, h)
		msg := publish(t, h, topics.DealWon, "d1", topics.DealWonV1{DealID: "d1", CustomerID: id, AmountCents: 100, Currency: "EUR"}, 3)
		eventID := msg.Metadata.Get(bus.MetaEventID)
		contexttest.Eventually(t, "the three deliveries handled", func() bool { return h.Handled(t, countWonDeal) == 3 })
		h.NonePoisoned(t)
		if n := dealsWon(t, svc, id); n != 1 {
			t.Fatalf("deals_won = %d after one event delivered three times, want 1", n)
		}
		if n := processed(t, h, countWonDeal, eventID); n != 1 {
			t.Fatalf("%d processed-events rows, want 1", n)
		}

		// Without the record, the same event counts again.
		exec(t, h, `DELETE FROM processed_events WHERE handler = 'customer.count-won-deal'`)
		redeliver(t, h, topics.DealWon.Name(), msg, 1)
		contexttest.Eventually(t, "the redelivery handled", func() bool { return h.Handled(t, countWonDeal) == 4 })
		if n := dealsWon(t, svc, id); n != 2 {
			t.Fatalf("deals_won = %d after a redelivery without its processed-events record, want 2", n)
		}
		// And so does the use case run twice, as a handler without the record would.
		for range 2 {
			if err := svc.CountWonDeal(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if n := dealsWon(t, svc, id); n != 4 {
			t.Fatalf("deals_won = %d after CountWonDeal ran twice more, want 4", n)
		}
	}, customer.Module)
}

func TestDealWonForAnUnknownCustomerIsPoisonedAtOnce(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		publish(t, h, topics.DealWon, "d1", topics.DealWonV1{DealID: "d1", CustomerID: "nobody", AmountCents: 100, Currency: "EUR"}, 1)
		if p := h.NextPoisoned(t); p.Handler != countWonDeal || p.Attempts != 1 {
			t.Fatalf("poisoned by %s after %d attempts, want %s after 1", p.Handler, p.Attempts, countWonDeal)
		}
	}, customer.Module)
}

// newCustomer creates u1's customer and returns its id.
func newCustomer(t *testing.T, h *contexttest.Harness) string {
	t.Helper()
	if err := service(h).CreateProfile(context.Background(), "u1", "ada@example.com", "Ada"); err != nil {
		t.Fatal(err)
	}
	return contexttest.Next(t, h, topics.CustomerCreated).Payload.CustomerID
}

func dealsWon(t *testing.T, svc *app.Service, id string) int64 {
	t.Helper()
	c, err := svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.DealsWon
}
