package ports_test

import (
	"context"
	"testing"
	"time"

	"github.com/example/monolith/contexts/customer"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/topics"
)

// TestFailedDeactivationLeavesNoMark: a suspension handled before the
// user's customer exists fails after the handler marked the event
// processed; the failure rolls the mark back, so the same event delivered
// again once the customer exists is applied.
func TestFailedDeactivationLeavesNoMark(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		svc := service(h)
		msg := publish(t, h, topics.UserSuspended, "u1", topics.UserSuspendedV1{UserID: "u1"}, 1)
		eventID := msg.Metadata.Get(bus.MetaEventID)
		if p := h.NextPoisoned(t); p.Handler != deactivate || p.Attempts != 1 {
			t.Fatalf("poisoned by %s after %d attempts, want %s after 1", p.Handler, p.Attempts, deactivate)
		}
		if n := processed(t, h, deactivate, eventID); n != 0 {
			t.Fatalf("%d processed-events rows for the failed suspension, want none", n)
		}

		if err := svc.CreateProfile(context.Background(), "u1", "ada@example.com", "Ada"); err != nil {
			t.Fatal(err)
		}
		id := contexttest.Next(t, h, topics.CustomerCreated).Payload.CustomerID

		redeliver(t, h, topics.UserSuspended.Name(), msg, 1)
		if e := contexttest.Next(t, h, topics.CustomerUpdated); e.Payload != (topics.CustomerUpdatedV1{CustomerID: id, Name: "Ada", Tier: "free", Active: false}) {
			t.Fatalf("updated = %+v, want %s inactive", e.Payload, id)
		}
		contexttest.Eventually(t, "the redelivery handled", func() bool { return h.Handled(t, deactivate) == 2 })
		if c, err := svc.Get(context.Background(), id); err != nil || c.Active {
			t.Fatalf("customer = %+v, %v; want inactive", c, err)
		}
		if n := processed(t, h, deactivate, eventID); n != 1 {
			t.Fatalf("%d processed-events rows after the successful delivery, want 1", n)
		}

		// Once applied, a further delivery is acked without effect.
		redeliver(t, h, topics.UserSuspended.Name(), msg, 1)
		contexttest.Eventually(t, "the second redelivery handled", func() bool { return h.Handled(t, deactivate) == 3 })
		contexttest.None(t, h, topics.CustomerUpdated)
		h.NonePoisoned(t)
	}, customer.Module, noRetry)
}

func TestSuspensionDeactivatesOnce(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		if err := service(h).CreateProfile(context.Background(), "u1", "ada@example.com", "Ada"); err != nil {
			t.Fatal(err)
		}
		id := contexttest.Next(t, h, topics.CustomerCreated).Payload.CustomerID

		publish(t, h, topics.UserSuspended, "u1", topics.UserSuspendedV1{UserID: "u1"}, 2)
		e := contexttest.Next(t, h, topics.CustomerUpdated)
		if want := (topics.CustomerUpdatedV1{CustomerID: id, Name: "Ada", Tier: "free", Active: false}); e.Payload != want {
			t.Fatalf("updated = %+v, want %+v", e.Payload, want)
		}
		contexttest.None(t, h, topics.CustomerUpdated)
	}, customer.Module)
}

func TestSuspensionOvertakingRegistrationIsRetried(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		ctx := context.Background()
		if err := bus.Publish(ctx, h.Bus, topics.UserSuspended, "u1", topics.UserSuspendedV1{UserID: "u1"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the first attempt fails: no customer yet
		if err := bus.Publish(ctx, h.Bus, topics.UserRegistered, "u1", topics.UserRegisteredV1{UserID: "u1", Email: "ada@example.com", Name: "Ada"}); err != nil {
			t.Fatal(err)
		}

		id := contexttest.Next(t, h, topics.CustomerCreated).Payload.CustomerID
		if e := contexttest.Next(t, h, topics.CustomerUpdated); e.Payload.CustomerID != id || e.Payload.Active {
			t.Fatalf("updated = %+v, want %s inactive", e.Payload, id)
		}
		c, err := service(h).Get(ctx, id)
		if err != nil || c.Active {
			t.Fatalf("customer = %+v, %v; want inactive", c, err)
		}
		h.NonePoisoned(t)
	}, customer.Module)
}
