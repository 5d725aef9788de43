package ports_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/topics"
)

// publish sends the same event as many times as asked, as a broker
// redelivering it would: one event id, several deliveries. It returns the
// message, for redelivering it later.
func publish[T any](t *testing.T, b *bus.Bus, topic bus.Topic[T], aggregateID string, payload T, deliveries int) *message.Message {
	t.Helper()
	msg, err := bus.NewMessage(context.Background(), topic, aggregateID, payload)
	if err != nil {
		t.Fatal(err)
	}
	redeliver(t, b, topic.Name(), msg, deliveries)
	return msg
}

// redeliver sends msg, with its event id, deliveries more times.
func redeliver(t *testing.T, b *bus.Bus, topic string, msg *message.Message, deliveries int) {
	t.Helper()
	for range deliveries {
		if err := b.Publish(topic, msg); err != nil { // gochannel sends a copy each time
			t.Fatal(err)
		}
	}
}

const (
	createProfile = "customer.create-profile"
	deactivate    = "customer.deactivate-on-user-suspended"
)

// TestSameRegistrationDeliveredTwiceIsAppliedOnce delivers one
// identity.user.registered (one event id) twice, the second time after the
// first was applied: the handler records the event as processed and acks
// the redelivery without running the use case again.
func TestSameRegistrationDeliveredTwiceIsAppliedOnce(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		msg := publish(t, h.bus, topics.UserRegistered, "u1", topics.UserRegisteredV1{UserID: "u1", Email: "ada@example.com", Name: "Ada"}, 1)
		eventID := msg.Metadata.Get(bus.MetaEventID)
		e := next(t, h.created)
		h.waitHandled(t, createProfile, 1)
		if n := h.processed(t, createProfile, eventID); n != 1 {
			t.Fatalf("%d processed-events rows after the first delivery, want 1", n)
		}

		redeliver(t, h.bus, topics.UserRegistered.Name(), msg, 1)
		h.waitHandled(t, createProfile, 2)
		none(t, h.created)
		none(t, h.poisoned)
		if n := h.processed(t, createProfile, eventID); n != 1 {
			t.Fatalf("%d processed-events rows after the redelivery, want 1", n)
		}
		cs, err := h.svc.List(context.Background(), "")
		if err != nil || len(cs) != 1 || cs[0].ID != e.Payload.CustomerID || cs[0].UserID != "u1" {
			t.Fatalf("customers = %+v, %v; want only %s", cs, err, e.Payload.CustomerID)
		}
		if e.CausationID != eventID {
			t.Fatalf("created caused by %q, want the registration %s", e.CausationID, eventID)
		}
	})
}

// TestFailedDeactivationLeavesNoMark: a suspension handled before the
// user's customer exists fails after the handler marked the event
// processed; the failure rolls the mark back, so the same event delivered
// again once the customer exists is applied.
func TestFailedDeactivationLeavesNoMark(t *testing.T) {
	eachWith(t, options{noRetry: true}, func(t *testing.T, h *harness) {
		msg := publish(t, h.bus, topics.UserSuspended, "u1", topics.UserSuspendedV1{UserID: "u1"}, 1)
		eventID := msg.Metadata.Get(bus.MetaEventID)
		if p := next(t, h.poisoned); p.Handler != deactivate || p.Attempts != 1 {
			t.Fatalf("poisoned by %s after %d attempts, want %s after 1", p.Handler, p.Attempts, deactivate)
		}
		if n := h.processed(t, deactivate, eventID); n != 0 {
			t.Fatalf("%d processed-events rows for the failed suspension, want none", n)
		}

		if err := h.svc.CreateProfile(context.Background(), "u1", "ada@example.com", "Ada"); err != nil {
			t.Fatal(err)
		}
		id := next(t, h.created).Payload.CustomerID

		redeliver(t, h.bus, topics.UserSuspended.Name(), msg, 1)
		if e := next(t, h.updated); e.Payload != (topics.CustomerUpdatedV1{CustomerID: id, Name: "Ada", Tier: "free", Active: false}) {
			t.Fatalf("updated = %+v, want %s inactive", e.Payload, id)
		}
		h.waitHandled(t, deactivate, 2)
		if c, err := h.svc.Get(context.Background(), id); err != nil || c.Active {
			t.Fatalf("customer = %+v, %v; want inactive", c, err)
		}
		if n := h.processed(t, deactivate, eventID); n != 1 {
			t.Fatalf("%d processed-events rows after the successful delivery, want 1", n)
		}

		// Once applied, a further delivery is acked without effect.
		redeliver(t, h.bus, topics.UserSuspended.Name(), msg, 1)
		h.waitHandled(t, deactivate, 3)
		none(t, h.updated)
		none(t, h.poisoned)
	})
}

// TestFailedRegistrationRollsBackCustomerAndMark: the handler's writes and
// its processed mark are one transaction. Without the outbox tables (the
// relay creates them) the registration's customer is written, then its
// customer.customer.created cannot be, so the handler fails: the customer
// and the mark are both rolled back, and the same event delivered again
// once the outbox exists creates the customer and publishes it, once.
func TestFailedRegistrationRollsBackCustomerAndMark(t *testing.T) {
	eachWith(t, options{noRetry: true, noRelay: true}, func(t *testing.T, h *harness) {
		msg := publish(t, h.bus, topics.UserRegistered, "u1", topics.UserRegisteredV1{UserID: "u1", Email: "ada@example.com", Name: "Ada"}, 1)
		eventID := msg.Metadata.Get(bus.MetaEventID)
		if p := next(t, h.poisoned); p.Handler != createProfile || p.Attempts != 1 {
			t.Fatalf("poisoned by %s after %d attempts, want %s after 1", p.Handler, p.Attempts, createProfile)
		}
		if n := h.customers(t); n != 0 {
			t.Fatalf("%d customers after the failed registration, want none", n)
		}
		if n := h.processed(t, createProfile, eventID); n != 0 {
			t.Fatalf("%d processed-events rows for the failed registration, want none", n)
		}

		h.relay(t)
		redeliver(t, h.bus, topics.UserRegistered.Name(), msg, 2)
		e := next(t, h.created)
		h.waitHandled(t, createProfile, 3)
		none(t, h.created)
		none(t, h.poisoned)
		cs, err := h.svc.List(context.Background(), "")
		if err != nil || len(cs) != 1 || cs[0].ID != e.Payload.CustomerID || cs[0].UserID != "u1" {
			t.Fatalf("customers = %+v, %v; want only %s", cs, err, e.Payload.CustomerID)
		}
		if n := h.processed(t, createProfile, eventID); n != 1 {
			t.Fatalf("%d processed-events rows, want 1", n)
		}
	})
}

func TestRedeliveredRegistrationCreatesOneCustomer(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		publish(t, h.bus, topics.UserRegistered, "u1", topics.UserRegisteredV1{UserID: "u1", Email: "ada@example.com", Name: "Ada"}, 3)

		e := next(t, h.created)
		if e.Payload.UserID != "u1" || e.Payload.Tier != "free" || e.CausationID == "" {
			t.Fatalf("created = %+v (causation %q), want u1's customer caused by the registration", e.Payload, e.CausationID)
		}
		none(t, h.created)
		cs, err := h.svc.List(context.Background(), "")
		if err != nil || len(cs) != 1 || cs[0].ID != e.Payload.CustomerID {
			t.Fatalf("customers = %+v, %v; want only %s", cs, err, e.Payload.CustomerID)
		}
	})
}

func TestSuspensionDeactivatesOnce(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		if err := h.svc.CreateProfile(context.Background(), "u1", "ada@example.com", "Ada"); err != nil {
			t.Fatal(err)
		}
		id := next(t, h.created).Payload.CustomerID

		publish(t, h.bus, topics.UserSuspended, "u1", topics.UserSuspendedV1{UserID: "u1"}, 2)
		e := next(t, h.updated)
		if want := (topics.CustomerUpdatedV1{CustomerID: id, Name: "Ada", Tier: "free", Active: false}); e.Payload != want {
			t.Fatalf("updated = %+v, want %+v", e.Payload, want)
		}
		none(t, h.updated)
	})
}

func TestSuspensionOvertakingRegistrationIsRetried(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		publish(t, h.bus, topics.UserSuspended, "u1", topics.UserSuspendedV1{UserID: "u1"}, 1)
		time.Sleep(50 * time.Millisecond) // the first attempt fails: no customer yet
		publish(t, h.bus, topics.UserRegistered, "u1", topics.UserRegisteredV1{UserID: "u1", Email: "ada@example.com", Name: "Ada"}, 1)

		id := next(t, h.created).Payload.CustomerID
		if e := next(t, h.updated); e.Payload.CustomerID != id || e.Payload.Active {
			t.Fatalf("updated = %+v, want %s inactive", e.Payload, id)
		}
		c, err := h.svc.Get(context.Background(), id)
		if err != nil || c.Active {
			t.Fatalf("customer = %+v, %v; want inactive", c, err)
		}
		none(t, h.poisoned)
	})
}

func TestRegistrationWithoutUserIsPoisonedAtOnce(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		publish(t, h.bus, topics.UserRegistered, "", topics.UserRegisteredV1{Email: "a@example.com"}, 1)
		p := next(t, h.poisoned)
		if p.Handler != "customer.create-profile" || p.Attempts != 1 {
			t.Fatalf("poisoned by %s after %d attempts, want customer.create-profile after 1", p.Handler, p.Attempts)
		}
		none(t, h.created)
	})
}
