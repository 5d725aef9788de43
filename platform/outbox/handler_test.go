package outbox_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
)

// TestHandlerAppliesEachEventOnce delivers the same event (same id) several
// times through a real bus: the effect happens once, and a failed attempt
// leaves no trace, so its retry applies it.
func TestHandlerAppliesEachEventOnce(t *testing.T) {
	dbtest.Each(t, []db.Migrations{outbox.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.ExecContext(ctx, `CREATE TABLE effects (event_id TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		var runs atomic.Int32
		failFirst := true
		done := make(chan struct{}, 10)
		h := outbox.NewHandler(d, "shop.apply-order", placed, func(ctx context.Context, e bus.Event[order]) error {
			runs.Add(1)
			err := d.InTx(ctx, func(ctx context.Context, _ *db.Tx) error { // joins the handler's transaction
				_, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO effects (event_id) VALUES ($1)`, e.EventID)
				return err
			})
			if err == nil && failFirst {
				failFirst = false
				return errors.New("crash after the write") // rolls back the write and the mark
			}
			done <- struct{}{}
			return err
		})
		cfg := bus.DefaultConfig()
		cfg.Retry.InitialInterval = 5 * time.Millisecond
		b, err := bus.New(ctx, cfg, bus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Register(h); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		msg, err := bus.NewMessage(ctx, placed, "order-1", order{Seq: 1})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // the same event, three deliveries
			if err := b.Publish(placed.Name(), copyOf(msg)); err != nil {
				t.Fatal(err)
			}
		}
		<-done
		b.Close() // drains the other deliveries
		var effects int
		if err := d.QueryRowContext(ctx, `SELECT COUNT(*) FROM effects`).Scan(&effects); err != nil {
			t.Fatal(err)
		}
		if effects != 1 {
			t.Fatalf("%d effects for one event delivered 3 times, want 1", effects)
		}
		if runs.Load() < 2 {
			t.Fatalf("handler ran %d times, want the failed attempt and its retry", runs.Load())
		}
	})
}

func copyOf(m *message.Message) *message.Message {
	c := m.Copy()
	c.SetContext(m.Context())
	return c
}
