package ports_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/fx"

	"github.com/example/monolith/contexts/customer/internal/app"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/setting"
)

const (
	createProfile = "customer.create-profile"
	deactivate    = "customer.deactivate-on-user-suspended"
	countWonDeal  = "customer.count-won-deal"
)

// noRetry poisons a failing event at its first attempt.
var noRetry = fx.Decorate(func(c bus.Config) bus.Config {
	c.Retry.MaxRetries = 0
	return c
})

// service is a customer service on the harness's database, for driving and
// reading customers directly.
func service(h *contexttest.Harness) *app.Service {
	return app.NewService(h.DB, setting.NewCache(app.Settings))
}

// publish sends the same event as many times as asked, as a broker
// redelivering it would: one event id, several deliveries. It returns the
// message, for redelivering it later.
func publish[T any](t *testing.T, h *contexttest.Harness, topic bus.Topic[T], aggregateID string, payload T, deliveries int) *message.Message {
	t.Helper()
	msg, err := bus.NewMessage(context.Background(), topic, aggregateID, payload)
	if err != nil {
		t.Fatal(err)
	}
	redeliver(t, h, topic.Name(), msg, deliveries)
	return msg
}

// redeliver sends msg, with its event id, deliveries more times.
func redeliver(t *testing.T, h *contexttest.Harness, topic string, msg *message.Message, deliveries int) {
	t.Helper()
	for range deliveries {
		if err := h.Bus.Publish(topic, msg); err != nil { // gochannel sends a copy each time
			t.Fatal(err)
		}
	}
}

// processed counts handler's processed-events rows for eventID.
func processed(t *testing.T, h *contexttest.Harness, handler, eventID string) int {
	t.Helper()
	return count(t, h, `SELECT COUNT(*) FROM processed_events WHERE handler = $1 AND event_id = $2`, handler, eventID)
}

// count runs a COUNT(*) query.
func count(t *testing.T, h *contexttest.Harness, query string, args ...any) int {
	t.Helper()
	var n int
	if err := h.DB.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// exec runs a statement the test needs, such as taking a table away.
func exec(t *testing.T, h *contexttest.Harness, statement string) {
	t.Helper()
	if _, err := h.DB.ExecContext(context.Background(), statement); err != nil {
		t.Fatal(err)
	}
}
