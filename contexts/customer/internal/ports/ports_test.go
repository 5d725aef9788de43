package ports_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/monolith/contexts/customer/internal/app"
	"github.com/example/monolith/contexts/customer/internal/ports"
	"github.com/example/monolith/contexts/customer/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/outbox/outboxtest"
	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

// harness runs customer's handlers on a real in-process bus over a migrated
// database, with the outbox relay forwarding what the use cases publish, and
// records what is published and poisoned.
type harness struct {
	svc      *app.Service
	bus      *bus.Bus
	d        *db.DB
	metrics  *prometheus.Registry
	created  chan bus.Event[topics.CustomerCreatedV1]
	updated  chan bus.Event[topics.CustomerUpdatedV1]
	won      chan bus.Event[topics.DealWonV1]
	poisoned chan bus.PoisonedMessage
}

// options tune a harness; the zero value is the default bus with the relay
// running.
type options struct {
	// noRetry poisons a failing event at its first attempt.
	noRetry bool
	// noRelay leaves the relay, and so the outbox tables, to the test.
	noRelay bool
}

// migrations are customer's tables and the processed-events record its
// handlers keep.
var migrations = []db.Migrations{store.Migrations, outbox.Migrations}

func each(t *testing.T, fn func(t *testing.T, h *harness)) {
	eachWith(t, options{}, fn)
}

func eachWith(t *testing.T, opts options, fn func(t *testing.T, h *harness)) {
	dbtest.Each(t, migrations, func(t *testing.T, d *db.DB) { fn(t, newHarness(t, d, opts)) })
}

func newHarness(t *testing.T, d *db.DB, opts options) *harness {
	t.Helper()
	ctx := context.Background()
	cfg := bus.DefaultConfig()
	if opts.noRetry {
		cfg.Retry.MaxRetries = 0
	}
	reg := prometheus.NewRegistry()
	b, err := bus.New(ctx, cfg, bus.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		svc:      app.NewService(d, setting.NewCache(app.Settings)),
		bus:      b,
		d:        d,
		metrics:  reg,
		created:  record(t, b, topics.CustomerCreated),
		updated:  record(t, b, topics.CustomerUpdated),
		won:      record(t, b, topics.DealWon),
		poisoned: make(chan bus.PoisonedMessage, 16),
	}
	if err := b.Register(ports.Handlers(d, h.svc)...); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(bus.NewPoisonHandler("test.record-poisoned", func(_ context.Context, p bus.PoisonedMessage) error {
		h.poisoned <- p
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if !opts.noRelay {
		h.relay(t)
	}
	return h
}

// relay starts forwarding the outbox to the bus, creating the outbox tables.
// Registered after the bus's Close, its cleanup runs first.
func (h *harness) relay(t *testing.T) { outboxtest.Relay(t, h.d, h.bus) }

// record registers a handler that hands every event of topic to the test.
func record[T any](t *testing.T, b *bus.Bus, topic bus.Topic[T]) chan bus.Event[T] {
	t.Helper()
	ch := make(chan bus.Event[T], 64)
	name := "test.record-" + strings.ReplaceAll(topic.Name(), ".", "-")
	if err := b.Register(bus.NewHandler(name, topic, func(_ context.Context, e bus.Event[T]) error {
		ch <- e
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	return ch
}

// next waits for the next value on ch.
func next[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		var zero T
		t.Fatalf("nothing received, waiting for a %T", zero)
		return zero
	}
}

// none fails if ch receives within a short while: the relay polls the
// outbox and gochannel delivers asynchronously, so absence can only be
// observed over time (several relay poll intervals here).
func none[T any](t *testing.T, ch chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %+v", v)
	case <-time.After(500 * time.Millisecond):
	}
}

// handled is how many attempts handler has finished, successful or not,
// from the bus's app_bus_handler_execution_time_seconds histogram.
func (h *harness) handled(t *testing.T, handler string) uint64 {
	t.Helper()
	families, err := h.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() != "app_bus_handler_execution_time_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "handler_name" && l.GetValue() == handler {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}

// waitHandled waits until handler has finished n attempts in all.
func (h *harness) waitHandled(t *testing.T, handler string, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); h.handled(t, handler) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s finished %d attempts, waiting for %d", handler, h.handled(t, handler), n)
		}
	}
}

// processed counts handler's processed-events rows for eventID.
func (h *harness) processed(t *testing.T, handler, eventID string) int {
	t.Helper()
	var n int
	if err := h.d.QueryRowContext(context.Background(),
		`SELECT COUNT(*) FROM processed_events WHERE handler = $1 AND event_id = $2`, handler, eventID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// customers counts the stored customers.
func (h *harness) customers(t *testing.T) int {
	t.Helper()
	var n int
	if err := h.d.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM customers`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
