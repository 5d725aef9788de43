package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
)

// A handler added after 1,000 events were published catches up by a replay
// of the history addressed to it: it reaches the state of the handler that
// saw them live, that handler applies nothing twice, and a second replay
// changes nothing. The effect, a counter, is not idempotent by itself: only
// the processed-events record keeps it exact.
func TestReplayHistoryCatchesUpANewHandler(t *testing.T) {
	dbtest.Each(t, []db.Migrations{outbox.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.ExecContext(ctx, `CREATE TABLE tallies (handler TEXT NOT NULL, aggregate TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (handler, aggregate))`); err != nil {
			t.Fatal(err)
		}
		counter := func(name string) bus.Handler {
			return outbox.NewHandler(d, name, placed, func(ctx context.Context, e bus.Event[order]) error {
				_, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO tallies (handler, aggregate, n) VALUES ($1, $2, 1)
					ON CONFLICT (handler, aggregate) DO UPDATE SET n = tallies.n + 1`, name, e.AggregateID)
				return err
			})
		}
		tallies := func(name string) map[string]int {
			t.Helper()
			rows, err := d.QueryContext(ctx, `SELECT aggregate, n FROM tallies WHERE handler = $1`, name)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rows.Close() }()
			out := map[string]int{}
			for rows.Next() {
				var agg string
				var n int
				if err := rows.Scan(&agg, &n); err != nil {
					t.Fatal(err)
				}
				out[agg] = n
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			return out
		}
		total := func(m map[string]int) (n int) {
			for _, v := range m {
				n += v
			}
			return n
		}
		settle := func(what string, cond func() bool) {
			t.Helper()
			for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("after 20s: %s", what)
				}
			}
		}

		const n = 1000
		b := brokerBus(t, bus.DefaultConfig())
		if err := b.Register(counter("shop.count-live")); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		startRelay(t, d, b)
		for i := 0; i < n; i += 100 {
			batch := make([]bus.Item[order], 100)
			for j := range batch {
				batch[j] = bus.Item[order]{AggregateID: fmt.Sprint("order-", (i+j)%13), Payload: order{Seq: i + j}}
			}
			if err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
				return bus.PublishBatch(ctx, outbox.Publisher(tx), placed, batch)
			}); err != nil {
				t.Fatal(err)
			}
		}
		settle("the live handler counted every event", func() bool { return total(tallies("shop.count-live")) == n })
		_ = b.Close()

		// The new handler joins; the history is replayed to it alone.
		b = brokerBus(t, bus.DefaultConfig())
		if err := b.Register(counter("shop.count-live"), counter("shop.count-late")); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		startRelay(t, d, b)
		for range 2 {
			replayed, err := outbox.ReplayHistory(ctx, d, "shop.count-late", placed.Name(), outbox.HistoryFilter{})
			if err != nil || replayed != n {
				t.Fatalf("replayed %d events (%v), want %d", replayed, err, n)
			}
		}
		// One new event after the replays: each handler handles its events
		// in order (gochannel, concurrency 1), so once both counted it,
		// every replayed delivery before it was handled.
		if err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
			return bus.Publish(ctx, outbox.Publisher(tx), placed, "sentinel", order{Seq: n})
		}); err != nil {
			t.Fatal(err)
		}
		settle("both handlers counted the event after the replays", func() bool {
			return tallies("shop.count-late")["sentinel"] == 1 && tallies("shop.count-live")["sentinel"] == 1
		})
		live, late := tallies("shop.count-live"), tallies("shop.count-late")
		if fmt.Sprint(late) != fmt.Sprint(live) || total(live) != n+1 {
			t.Fatalf("after two replays: late %v (%d events), live %v (%d events); want both the same, %d events", late, total(late), live, total(live), n+1)
		}

		// The history lists the events as published, and the replays apart.
		originals, err := outbox.History(ctx, d, outbox.HistoryFilter{AggregateID: "order-3"})
		if err != nil {
			t.Fatal(err)
		}
		var first, replays int
		for _, e := range originals {
			switch e.ReplayFor {
			case "":
				first++
			case "shop.count-late":
				replays++
			}
		}
		if want := live["order-3"]; first != want || replays != 2*want {
			t.Fatalf("history of order-3: %d events and %d replays, want %d and %d", first, replays, want, 2*want)
		}
		e, err := outbox.HistoryEventByID(ctx, d, originals[0].ID)
		if err != nil || e.ReplayFor != "" || e.AggregateID != "order-3" || e.Topic != placed.Name() || e.OccurredAt.IsZero() {
			t.Fatalf("event %s: %+v, %v", originals[0].ID, e, err)
		}
		if _, err := outbox.HistoryEventByID(ctx, d, "no-such-event"); !errors.Is(err, outbox.ErrEventNotFound) {
			t.Fatalf("an unknown id: %v", err)
		}
	})
}
