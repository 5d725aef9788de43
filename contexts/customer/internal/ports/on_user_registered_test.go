package ports_test

import (
	"context"
	"testing"

	"github.com/example/monolith/contexts/customer"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/topics"
)

// TestSameRegistrationDeliveredTwiceIsAppliedOnce delivers one
// identity.user.registered (one event id) twice, the second time after the
// first was applied: the handler records the event as processed and acks
// the redelivery without running the use case again.
func TestSameRegistrationDeliveredTwiceIsAppliedOnce(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		msg := publish(t, h, topics.UserRegistered, "u1", topics.UserRegisteredV1{UserID: "u1", Email: "ada@example.com", Name: "Ada"}, 1)
		eventID := msg.Metadata.Get(bus.MetaEventID)
		e := contexttest.Next(t, h, topics.CustomerCreated)
		contexttest.Eventually(t, "the delivery handled", func() bool { return h.Handled(t, createProfile) == 1 })
		if n := processed(t, h, createProfile, eventID); n != 1 {
			t.Fatalf("%d processed-events rows after the first delivery, want 1", n)
		}

		redeliver(t, h, topics.UserRegistered.Name(), msg, 1)
		contexttest.Eventually(t, "the redelivery handled", func() bool { return h.Handled(t, createProfile) == 2 })
		contexttest.None(t, h, topics.CustomerCreated)
		h.NonePoisoned(t)
		if n := processed(t, h, createProfile, eventID); n != 1 {
			t.Fatalf("%d processed-events rows after the redelivery, want 1", n)
		}
		cs, err := service(h).List(context.Background(), "")
		if err != nil || len(cs) != 1 || cs[0].ID != e.Payload.CustomerID || cs[0].UserID != "u1" {
			t.Fatalf("customers = %+v, %v; want only %s", cs, err, e.Payload.CustomerID)
		}
		if e.CausationID != eventID {
			t.Fatalf("created caused by %q, want the registration %s", e.CausationID, eventID)
		}
	}, customer.Module)
}

// TestFailedRegistrationRollsBackCustomerAndMark: the handler's writes and
// its processed mark are one transaction. Without the outbox table (renamed
// away under the running relay) the registration's customer is written,
// then its customer.customer.created cannot be, so the handler fails: the
// customer and the mark are both rolled back, and the same event delivered
// again once the outbox is back creates the customer and publishes it, once.
func TestFailedRegistrationRollsBackCustomerAndMark(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		exec(t, h, `ALTER TABLE watermill_outbox RENAME TO watermill_outbox_away`)
		msg := publish(t, h, topics.UserRegistered, "u1", topics.UserRegisteredV1{UserID: "u1", Email: "ada@example.com", Name: "Ada"}, 1)
		eventID := msg.Metadata.Get(bus.MetaEventID)
		if p := h.NextPoisoned(t); p.Handler != createProfile || p.Attempts != 1 {
			t.Fatalf("poisoned by %s after %d attempts, want %s after 1", p.Handler, p.Attempts, createProfile)
		}
		if n := count(t, h, `SELECT COUNT(*) FROM customers`); n != 0 {
			t.Fatalf("%d customers after the failed registration, want none", n)
		}
		if n := processed(t, h, createProfile, eventID); n != 0 {
			t.Fatalf("%d processed-events rows for the failed registration, want none", n)
		}

		exec(t, h, `ALTER TABLE watermill_outbox_away RENAME TO watermill_outbox`)
		redeliver(t, h, topics.UserRegistered.Name(), msg, 2)
		e := contexttest.Next(t, h, topics.CustomerCreated)
		contexttest.Eventually(t, "both redeliveries handled", func() bool { return h.Handled(t, createProfile) == 3 })
		contexttest.None(t, h, topics.CustomerCreated)
		h.NonePoisoned(t)
		cs, err := service(h).List(context.Background(), "")
		if err != nil || len(cs) != 1 || cs[0].ID != e.Payload.CustomerID || cs[0].UserID != "u1" {
			t.Fatalf("customers = %+v, %v; want only %s", cs, err, e.Payload.CustomerID)
		}
		if n := processed(t, h, createProfile, eventID); n != 1 {
			t.Fatalf("%d processed-events rows, want 1", n)
		}
	}, customer.Module, noRetry)
}

func TestRedeliveredRegistrationCreatesOneCustomer(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		publish(t, h, topics.UserRegistered, "u1", topics.UserRegisteredV1{UserID: "u1", Email: "ada@example.com", Name: "Ada"}, 3)

		e := contexttest.Next(t, h, topics.CustomerCreated)
		if e.Payload.UserID != "u1" || e.Payload.Tier != "free" || e.CausationID == "" {
			t.Fatalf("created = %+v (causation %q), want u1's customer caused by the registration", e.Payload, e.CausationID)
		}
		contexttest.None(t, h, topics.CustomerCreated)
		cs, err := service(h).List(context.Background(), "")
		if err != nil || len(cs) != 1 || cs[0].ID != e.Payload.CustomerID {
			t.Fatalf("customers = %+v, %v; want only %s", cs, err, e.Payload.CustomerID)
		}
	}, customer.Module)
}

func TestRegistrationWithoutUserIsPoisonedAtOnce(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		if err := bus.Publish(context.Background(), h.Bus, topics.UserRegistered, "", topics.UserRegisteredV1{Email: "a@example.com"}); err != nil {
			t.Fatal(err)
		}
		p := h.NextPoisoned(t)
		if p.Handler != createProfile || p.Attempts != 1 {
			t.Fatalf("poisoned by %s after %d attempts, want %s after 1", p.Handler, p.Attempts, createProfile)
		}
		contexttest.None(t, h, topics.CustomerCreated)
	}, customer.Module)
}
