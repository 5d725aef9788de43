package bustest

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
)

// testReplayHistory: a handler added after 1,000 events went through the
// outbox (a pattern handler, here) catches up by a replay of the history addressed to it. It reaches
// the state of the handler that saw them live, which applies nothing twice,
// and a second replay changes nothing. The effect, a counter, is not
// idempotent by itself: only the processed-events record keeps it exact.
func testReplayHistory(t *testing.T, s *suite) {
	const n = 1000
	d := dbtest.Open(t, db.DriverSQLite, outbox.Migrations)
	ctx := context.Background()
	if _, err := d.ExecContext(ctx, `CREATE TABLE tallies (handler TEXT NOT NULL, aggregate TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (handler, aggregate))`); err != nil {
		t.Fatal(err)
	}
	topic := s.topic("tallied")
	live, late := s.handlerName("count-live"), s.handlerName("count-late")
	count := func(ctx context.Context, name, aggregate string) error {
		_, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO tallies (handler, aggregate, n) VALUES ($1, $2, 1)
			ON CONFLICT (handler, aggregate) DO UPDATE SET n = tallies.n + 1`, name, aggregate)
		return err
	}
	counter := func(name string) bus.Handler {
		return outbox.NewHandler(d, name, topic, func(ctx context.Context, e bus.Event[Item]) error {
			return count(ctx, name, e.AggregateID)
		})
	}
	// The late handler consumes a pattern: a replay reaches it too.
	lateCounter := outbox.NewPatternHandler(d, late, "conformance.t"+s.id+".*", func(ctx context.Context, e bus.RawEvent) error {
		return count(ctx, late, e.AggregateID)
	})
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
			var c int
			if err := rows.Scan(&agg, &c); err != nil {
				t.Fatal(err)
			}
			out[agg] = c
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}

	_, stop := s.startApp(d, s.config(), counter(live))
	for i := 0; i < n; i += 100 {
		batch := make([]bus.Item[Item], 100)
		for j := range batch {
			batch[j] = bus.Item[Item]{AggregateID: fmt.Sprint("agg-", (i+j)%13), Payload: Item{N: i + j}}
		}
		if err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
			return bus.PublishBatch(ctx, outbox.Publisher(tx), topic, batch)
		}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, wait, "the live handler counts every event", func() bool { return total(tallies(live)) == n })
	stop()

	// The new handler joins; the history is replayed to it alone, twice.
	s.startApp(d, s.config(), counter(live), lateCounter)
	for range 2 {
		replayed, err := outbox.ReplayHistory(ctx, d, late, lateCounter.Topic(), outbox.HistoryFilter{})
		if err != nil || replayed != n {
			t.Fatalf("replayed %d events (%v), want %d", replayed, err, n)
		}
	}
	// One new event after the replays: each handler handles its events in
	// order (one instance, concurrency 1), so once both counted it, every
	// replayed delivery before it was handled.
	if err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		return bus.Publish(ctx, outbox.Publisher(tx), topic, "sentinel", Item{N: n})
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "both handlers count the event published after the replays", func() bool {
		return tallies(late)["sentinel"] == 1 && tallies(live)["sentinel"] == 1
	})
	got, want := tallies(late), tallies(live)
	if !maps.Equal(got, want) || total(want) != n+1 {
		t.Fatalf("after two replays: late %v (%d events), live %v (%d events); want both the same, %d events", got, total(got), want, total(want), n+1)
	}
	t.Logf("after two replays of %d events to %s (pattern %s): it counted %d events, as %s did live: %v", n, late, lateCounter.Topic(), total(got), live, got)
}
