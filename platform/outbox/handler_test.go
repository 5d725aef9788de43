package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
		defer func() { _ = b.Close() }()
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
		_ = b.Close() // drains the other deliveries
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

// TestHandlerUseCaseReadThenWriteJoinsItsTransaction runs, from an
// idempotent handler, a use case that reads through d.Q and then writes
// through d.InTx: both join the handler's transaction, so the first attempt
// succeeds, and the read sees what the transaction wrote before it.
func TestHandlerUseCaseReadThenWriteJoinsItsTransaction(t *testing.T) {
	dbtest.Each(t, []db.Migrations{outbox.Migrations}, func(t *testing.T, d *db.DB) {
		createOrderTables(t, d)
		outside := -1
		runs, poisoned := handleOnce(t, d, func(ctx context.Context, e bus.Event[order]) error {
			// An earlier write of the handler's transaction.
			if _, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO orders (seq) VALUES ($1)`, e.Payload.Seq); err != nil {
				return err
			}
			if d.Driver == db.DriverPostgres { // SQLite's one connection is the transaction's
				if err := d.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM orders`).Scan(&outside); err != nil {
					return err
				}
			}
			return tally(ctx, d, d.Q(ctx), e.Payload.Seq)
		})
		if runs != 1 || len(poisoned) != 0 {
			t.Fatalf("handler ran %d times, poisoned %q; want one successful attempt", runs, poisoned)
		}
		if d.Driver == db.DriverPostgres && outside != 0 {
			t.Fatalf("a reader outside the transaction saw %d orders before the commit, want 0", outside)
		}
		var seq, seen, orders int
		if err := d.QueryRowContext(context.Background(), `SELECT seq, orders_seen, (SELECT COUNT(*) FROM orders) FROM tallies`).Scan(&seq, &seen, &orders); err != nil {
			t.Fatalf("the use case's write was not committed: %v", err)
		}
		if seq != 1 || seen != 1 || orders != 1 {
			t.Fatalf("tally of order %d saw %d orders, %d committed; want order 1 seeing the 1 its transaction wrote", seq, seen, orders)
		}
	})

	// Why use cases read through Q: on SQLite the handler's transaction holds
	// the only connection, so a read through the pool waits for it until the
	// handler times out, on every attempt, and the event is poisoned.
	t.Run("sqlite pool read waits out the handler timeout", func(t *testing.T) {
		d := dbtest.Open(t, db.DriverSQLite, outbox.Migrations)
		createOrderTables(t, d)
		var (
			early   time.Duration // how long before the handler's deadline the read returned
			readErr error
		)
		runs, poisoned := handleOnce(t, d, func(ctx context.Context, e bus.Event[order]) error {
			readErr = tally(ctx, d, d.DB, e.Payload.Seq)
			deadline, _ := ctx.Deadline()
			early = time.Until(deadline)
			return readErr
		})
		if !errors.Is(readErr, context.DeadlineExceeded) || early > 0 {
			t.Fatalf("pool read returned %v %s before the handler timeout, want it still waiting when the timeout hit", readErr, early)
		}
		if runs != 1 || len(poisoned) != 1 {
			t.Fatalf("handler ran %d times, poisoned %d events; want its only attempt to poison the event", runs, len(poisoned))
		}
	})
}

// handlerTimeout bounds each handler attempt in handleOnce.
const handlerTimeout = time.Second

// handleOnce delivers one order to an outbox.NewHandler running fn on a real
// bus, without retries, and returns once the bus has drained: how many times
// fn ran and the reason of each event poisoned.
func handleOnce(t *testing.T, d *db.DB, fn func(context.Context, bus.Event[order]) error) (int, []string) {
	t.Helper()
	ctx := context.Background()
	var (
		mu       sync.Mutex
		runs     int
		poisoned []string
	)
	settled := make(chan struct{}, 2)
	h := outbox.NewHandler(d, "shop.tally-order", placed, func(ctx context.Context, e bus.Event[order]) error {
		mu.Lock()
		runs++
		mu.Unlock()
		err := fn(ctx, e)
		if err == nil {
			settled <- struct{}{}
		}
		return err
	}, bus.Timeout(handlerTimeout))
	record := bus.NewPoisonHandler("test.record-poisoned", func(_ context.Context, p bus.PoisonedMessage) error {
		mu.Lock()
		poisoned = append(poisoned, p.Reason)
		mu.Unlock()
		settled <- struct{}{}
		return nil
	})
	cfg := bus.DefaultConfig()
	cfg.Retry.MaxRetries = 0 // the first attempt must succeed
	b, err := bus.New(ctx, cfg, bus.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	if err := b.Register(h, record); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	msg, err := bus.NewMessage(ctx, placed, "order-1", order{Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(placed.Name(), msg); err != nil {
		t.Fatal(err)
	}
	select {
	case <-settled:
	case <-time.After(5 * handlerTimeout):
		t.Fatal("the event was neither handled nor poisoned")
	}
	_ = b.Close() // waits for the handler's commit
	mu.Lock()
	defer mu.Unlock()
	return runs, poisoned
}

// createOrderTables makes the tables tally reads and writes.
func createOrderTables(t *testing.T, d *db.DB) {
	t.Helper()
	for _, stmt := range []string{
		`CREATE TABLE orders (seq INTEGER NOT NULL)`,
		`CREATE TABLE tallies (seq INTEGER NOT NULL, orders_seen INTEGER NOT NULL)`,
	} {
		if _, err := d.ExecContext(context.Background(), stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// tally is shaped like a use case: it reads through read, then writes in a
// transaction (its own, or the one ctx carries).
func tally(ctx context.Context, d *db.DB, read db.Querier, seq int) error {
	var seen int
	if err := read.QueryRowContext(ctx, `SELECT COUNT(*) FROM orders`).Scan(&seen); err != nil {
		return fmt.Errorf("count orders: %w", err)
	}
	return d.InTx(ctx, func(ctx context.Context, _ *db.Tx) error {
		_, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO tallies (seq, orders_seen) VALUES ($1, $2)`, seq, seen)
		return err
	})
}

func copyOf(m *message.Message) *message.Message {
	c := m.Copy()
	c.SetContext(m.Context())
	return c
}
