package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
)

// Prune removes forwarded events and processed-events records older than
// the retention, keeps the fresh ones and every event the relay has not
// forwarded, however old, and the relay then forwards those as before.
func TestPruneKeepsWhatIsFreshOrNotForwarded(t *testing.T) {
	dbtest.Each(t, []db.Migrations{outbox.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		commit := func(from, n int) {
			t.Helper()
			err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
				for i := from; i < from+n; i++ {
					if err := bus.Publish(ctx, outbox.Publisher(tx), placed, fmt.Sprint(i), order{Seq: i}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		age := func(afterOffset int64) { // rows after the offset were written 40 days ago
			t.Helper()
			q := `UPDATE watermill_outbox SET created_at = datetime(created_at, '-40 days') WHERE "offset" > $1`
			if d.Driver == db.DriverPostgres {
				q = `UPDATE watermill_outbox SET created_at = created_at - interval '40 days' WHERE "offset" > $1`
			}
			if _, err := d.ExecContext(ctx, q, afterOffset); err != nil {
				t.Fatal(err)
			}
		}
		forwarded := func(r *recorder, n int) {
			t.Helper()
			for deadline := time.Now().Add(10 * time.Second); len(r.seqs(t)) < n; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d events forwarded after 10s", len(r.seqs(t)), n)
				}
			}
		}

		first := &recorder{}
		relay := startRelay(t, d, first)
		commit(0, 10) // forwarded, then old: pruned
		forwarded(first, 10)
		age(0)
		commit(10, 3) // forwarded and fresh: kept
		forwarded(first, 13)
		_ = relay.Close()
		last := maxOffset(t, d)
		commit(13, 5) // old but never forwarded: kept
		age(last)

		for _, at := range []time.Time{db.Now().Add(-40 * 24 * time.Hour), db.Now()} {
			if _, err := d.ExecContext(ctx, `INSERT INTO processed_events (handler, event_id, processed_at) VALUES ($1, $2, $3)`,
				"shop.apply-order", fmt.Sprint("event-", at.Unix()), at); err != nil {
				t.Fatal(err)
			}
		}

		pruned, err := outbox.Prune(ctx, d, 30*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if pruned != (outbox.Pruned{Events: 10, Processed: 1}) {
			t.Fatalf("pruned %+v, want the 10 old forwarded events and the old record", pruned)
		}
		var events, records int
		if err := d.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM watermill_outbox), (SELECT COUNT(*) FROM processed_events)`).Scan(&events, &records); err != nil {
			t.Fatal(err)
		}
		if events != 8 || records != 1 {
			t.Fatalf("%d events and %d records left, want 8 (3 fresh, 5 not forwarded) and 1", events, records)
		}

		second := &recorder{}
		startRelay(t, d, second)
		forwarded(second, 5)
		time.Sleep(100 * time.Millisecond) // nothing more comes
		if got := second.seqs(t); len(got) != 5 || got[0] != 13 || got[4] != 17 {
			t.Fatalf("after pruning the relay forwarded %v, want items 13 to 17", got)
		}
	})
}

func TestPruneNeedsARetention(t *testing.T) {
	d := dbtest.Open(t, db.DriverSQLite, outbox.Migrations)
	if _, err := outbox.Prune(context.Background(), d, 0); err == nil {
		t.Fatal("Prune with no retention removed everything instead of failing")
	}
}

func maxOffset(t *testing.T, d *db.DB) int64 {
	t.Helper()
	var n int64
	if err := d.QueryRowContext(context.Background(), `SELECT COALESCE(MAX("offset"), 0) FROM watermill_outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
