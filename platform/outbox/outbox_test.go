package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
)

type order struct {
	Seq int `json:"seq"`
}

var placed = bus.NewTopic[order]("shop.order.placed", 1)

// recorder is the relay's destination: it keeps what was forwarded, in order.
type recorder struct {
	mu     sync.Mutex
	msgs   []*message.Message
	failAt int           // fail the publish of this message number once (1-based), 0: never
	delay  time.Duration // per message, to stop a relay mid-stream
}

func (r *recorder) Publish(topic string, msgs ...*message.Message) error {
	time.Sleep(r.delay)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		if r.failAt > 0 && len(r.msgs)+1 == r.failAt {
			r.failAt = 0
			return errors.New("broker hiccup")
		}
		m.Metadata.Set("forwarded_to", topic)
		r.msgs = append(r.msgs, m)
	}
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) seqs(t *testing.T) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, 0, len(r.msgs))
	for _, m := range r.msgs {
		var o order
		if err := json.Unmarshal(m.Payload, &o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o.Seq)
	}
	return out
}

func startRelay(t *testing.T, d *db.DB, out message.Publisher) *outbox.Relay {
	t.Helper()
	r, err := outbox.NewRelay(d, out, outbox.Config{PollInterval: 10 * time.Millisecond, BatchSize: 50}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func publish(t *testing.T, d *db.DB, seqs ...int) {
	t.Helper()
	err := d.InTx(context.Background(), func(ctx context.Context, tx *db.Tx) error {
		for _, s := range seqs {
			if err := bus.Publish(ctx, outbox.Publisher(tx), placed, "order-1", order{Seq: s}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitLen(t *testing.T, r *recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(r.seqs(t)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("forwarded %d events, want %d", len(r.seqs(t)), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOutboxCommitsWithTheTransaction(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		out := &recorder{}
		startRelay(t, d, out)

		rolledBack := errors.New("rolled back")
		err := d.InTx(context.Background(), func(ctx context.Context, tx *db.Tx) error {
			if err := bus.Publish(ctx, outbox.Publisher(tx), placed, "order-1", order{Seq: -1}); err != nil {
				return err
			}
			return rolledBack
		})
		if !errors.Is(err, rolledBack) {
			t.Fatal(err)
		}
		publish(t, d, 1)
		waitLen(t, out, 1)
		time.Sleep(100 * time.Millisecond)
		if got := out.seqs(t); len(got) != 1 || got[0] != 1 {
			t.Fatalf("forwarded %v, want only the committed event [1]", got)
		}
		m := out.msgs[0]
		if m.Metadata.Get("forwarded_to") != placed.Name() || m.Metadata.Get(bus.MetaEventType) != placed.Name() || m.UUID != m.Metadata.Get(bus.MetaEventID) {
			t.Fatalf("forwarded message lost its topic or envelope: %s %v", m.UUID, m.Metadata)
		}
	})
}

func TestRelayKeepsEachAggregatesOrderThroughFailures(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		out := &recorder{failAt: 37} // one failed publish mid-stream
		startRelay(t, d, out)
		const aggregates, perAggregate = 4, 75
		// One writer per aggregate, as a row lock on the aggregate makes
		// them in a real use case; the writers run concurrently.
		var wg sync.WaitGroup
		for a := range aggregates {
			wg.Go(func() {
				for i := 1; i <= perAggregate; i++ {
					publish(t, d, a*1000+i)
				}
			})
		}
		wg.Wait()
		waitLen(t, out, aggregates*perAggregate)
		last := map[int]int{}
		for _, s := range out.seqs(t) {
			a, i := s/1000, s%1000
			if i != last[a]+1 {
				t.Fatalf("aggregate %d: event %d forwarded after %d", a, i, last[a])
			}
			last[a] = i
		}
		for a := range aggregates {
			if last[a] != perAggregate {
				t.Fatalf("aggregate %d: %d of %d events forwarded", a, last[a], perAggregate)
			}
		}
	})
}

func TestRelayStoppedMidStreamLosesNothing(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		first := &recorder{delay: 2 * time.Millisecond}
		r := startRelay(t, d, first)
		for i := 1; i <= 200; i += 20 {
			seqs := make([]int, 20)
			for j := range seqs {
				seqs[j] = i + j
			}
			publish(t, d, seqs...)
		}
		waitLen(t, first, 30)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		second := &recorder{}
		startRelay(t, d, second)
		seen := map[int]bool{}
		deadline := time.Now().Add(20 * time.Second)
		for len(seen) < 200 && time.Now().Before(deadline) {
			seen = map[int]bool{}
			for _, s := range append(first.seqs(t), second.seqs(t)...) {
				seen[s] = true
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(seen) != 200 {
			t.Fatalf("%d of 200 events forwarded across the restart", len(seen))
		}
		t.Logf("first relay %d, second %d (duplicates allowed)", len(first.seqs(t)), len(second.seqs(t)))
	})
}

// A batch published into the outbox commits or rolls back with the
// transaction as a whole, and the relay forwards it in item order, however
// many INSERTs it took.
func TestPublishBatchCommitsOrRollsBackWithTheTransaction(t *testing.T) {
	dbtest.Each(t, []db.Migrations{outbox.Migrations}, func(t *testing.T, d *db.DB) {
		out := &recorder{}
		startRelay(t, d, out)
		const n = 2500 // more than one INSERT's worth
		batch := make([]bus.Item[order], n)
		for i := range batch {
			batch[i] = bus.Item[order]{AggregateID: fmt.Sprint(i % 7), Payload: order{Seq: i}}
		}
		publish := func(ctx context.Context, tx *db.Tx) error {
			return bus.PublishBatch(ctx, outbox.Publisher(tx), placed, batch)
		}
		rollback := errors.New("the use case fails after publishing")
		err := d.InTx(context.Background(), func(ctx context.Context, tx *db.Tx) error {
			if err := publish(ctx, tx); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("InTx: %v", err)
		}
		if err := d.InTx(context.Background(), publish); err != nil {
			t.Fatal(err)
		}
		var rows int
		if err := d.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM watermill_outbox`).Scan(&rows); err != nil || rows != n {
			t.Fatalf("%d rows in the outbox (%v), want the %d of the committed batch and none of the rolled back one", rows, err, n)
		}
		deadline := time.Now().Add(20 * time.Second)
		for len(out.seqs(t)) < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		seqs := out.seqs(t)
		if len(seqs) != n {
			t.Fatalf("%d events forwarded, want %d", len(seqs), n)
		}
		for i, seq := range seqs {
			if seq != i {
				t.Fatalf("forwarded position %d holds item %d", i, seq)
			}
		}
	})
}
