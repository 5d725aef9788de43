package outbox_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
)

func TestBacklogCountsCommittedUnforwardedEvents(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		backlog := func() outbox.Backlog {
			t.Helper()
			b, err := outbox.ReadBacklog(ctx, d)
			if err != nil {
				t.Fatalf("read backlog: %v", err)
			}
			return b
		}
		if b := backlog(); b != (outbox.Backlog{}) {
			t.Fatalf("backlog before the relay created its tables: %+v", b)
		}

		// The relay's tables exist, the relay does not run.
		out := &recorder{}
		r, err := outbox.NewRelay(d, out, outbox.Config{PollInterval: 10 * time.Millisecond, BatchSize: 50}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		publish(t, d, 1, 2, 3)
		publish(t, d, 4)
		rolledBack := errors.New("rolled back")
		err = d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
			if err := bus.Publish(ctx, outbox.Publisher(tx), placed, "order-1", order{Seq: -1}); err != nil {
				return err
			}
			return rolledBack
		})
		if !errors.Is(err, rolledBack) {
			t.Fatal(err)
		}
		if d.Driver == db.DriverPostgres {
			// A transaction still open (SQLite's one connection would wait
			// for it instead).
			tx, err := d.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			if err := bus.Publish(ctx, outbox.Publisher(&db.Tx{Tx: tx, Driver: d.Driver}), placed, "order-2", order{Seq: -2}); err != nil {
				t.Fatal(err)
			}
		}
		waitUntil(t, "4 committed events waiting, the oldest for some time", func() bool {
			b := backlog()
			if b.Events != 4 {
				t.Fatalf("backlog %+v, want 4 events", b)
			}
			return b.Oldest > 0
		})

		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitLen(t, out, 4)
		waitUntil(t, "the backlog empty once the relay forwarded everything", func() bool { return backlog() == outbox.Backlog{} })
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
