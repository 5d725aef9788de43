package outbox_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/delay"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
)

// TestScheduledEventsJoinTheTransaction: a delayed publish commits or rolls
// back with the caller's transaction, is listed until due, and reaches the
// relay's destination once due, without its delay metadata.
func TestScheduledEventsJoinTheTransaction(t *testing.T) {
	dbtest.Each(t, []db.Migrations{outbox.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		rolledBack := errors.New("roll back")
		err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
			if _, err := bus.PublishAfter(ctx, outbox.Publisher(tx), placed, "o-1", order{Seq: 1}, time.Millisecond); err != nil {
				return err
			}
			return rolledBack
		})
		if !errors.Is(err, rolledBack) {
			t.Fatal(err)
		}
		var id string
		due := time.Now().Add(time.Second)
		err = d.InTx(ctx, func(ctx context.Context, tx *db.Tx) (err error) {
			id, err = bus.PublishAt(ctx, outbox.Publisher(tx), placed, "o-2", order{Seq: 2}, due)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		listed, err := outbox.ListScheduled(ctx, d, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != 1 || listed[0].ID != id || listed[0].Topic != placed.Name() || listed[0].DueAt.Before(due.Truncate(time.Microsecond)) ||
			listed[0].Metadata[bus.MetaAggregateID] != "o-2" || string(listed[0].Payload) != `{"seq":2}` {
			t.Fatalf("scheduled = %+v, want only event %s of %s due at %s (the rolled back one gone)", listed, id, placed.Name(), due)
		}

		out := &recorder{}
		startRelay(t, d, out)
		waitLen(t, out, 1)
		if time.Now().Before(due) {
			t.Fatal("forwarded before it was due")
		}
		m := out.msgs[0]
		if m.UUID != id || m.Metadata.Get(delay.DelayedUntilKey) != "" || m.Metadata.Get(delay.DelayedForKey) != "" {
			t.Fatalf("forwarded %s with metadata %v, want event %s without delay metadata", m.UUID, m.Metadata, id)
		}
		if listed, _ := outbox.ListScheduled(ctx, d, 10); len(listed) != 0 {
			t.Fatalf("still scheduled after forwarding: %+v", listed)
		}
	})
}

// TestDueEventsMoveOnceWithSeveralRelays: relays of several instances move
// each due event into the outbox once. (Several instances share PostgreSQL
// only: on SQLite's one connection, relays of one process forward the same
// events, and one process runs one.)
func TestDueEventsMoveOnceWithSeveralRelays(t *testing.T) {
	d := dbtest.Open(t, db.DriverPostgres, outbox.Migrations)
	const n = 1200 // more than one relay moves in one transaction
	ctx := context.Background()
	out := &recorder{}
	if _, err := outbox.NewRelay(d, out, outbox.DefaultConfig(), slog.New(slog.DiscardHandler)); err != nil { // creates the tables
		t.Fatal(err)
	}
	// Late enough that the transaction (slow under -race) ends before.
	due := time.Now().Add(2 * time.Second)
	err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		for i := range n {
			if _, err := bus.PublishAt(ctx, outbox.Publisher(tx), placed, "o", order{Seq: i}, due); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if time.Now().After(due) {
		t.Fatal("the events fell due before their transaction committed; the test needs a later due time")
	}
	for range 3 {
		startRelay(t, d, out)
	}
	waitLen(t, out, n)
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive by now
	out.mu.Lock()
	defer out.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range out.msgs {
		if seen[m.UUID] {
			t.Fatalf("event %s forwarded twice", m.UUID)
		}
		seen[m.UUID] = true
	}
	if len(out.msgs) != n {
		t.Fatalf("forwarded %d events, want %d", len(out.msgs), n)
	}
}
