package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
)

// openDB opens a new, empty database of driver for one row, migrated with
// the outbox's processed-events table and the real path's two tables: a
// SQLite file in a temporary directory, or a PostgreSQL database of its
// own. drop closes and deletes it.
func openDB(ctx context.Context, e *env, driver string) (d *db.DB, drop func() error, err error) {
	cfg := db.DefaultConfig()
	cfg.Driver = driver
	var remove func() error
	switch driver {
	case db.DriverSQLite:
		dir, err := os.MkdirTemp("", "busbench-")
		if err != nil {
			return nil, nil, err
		}
		cfg.DSN = filepath.Join(dir, "bench.db")
		remove = func() error { return os.RemoveAll(dir) }
	case db.DriverPostgres:
		name := fmt.Sprintf("busbench_%s_%d", e.runID, e.seq.Add(1))
		admin, err := sql.Open("pgx", e.postgresDSN)
		if err != nil {
			return nil, nil, err
		}
		defer func() { _ = admin.Close() }()
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			return nil, nil, fmt.Errorf("create database %s: %w", name, err)
		}
		u, err := url.Parse(e.postgresDSN)
		if err != nil {
			return nil, nil, err
		}
		u.Path = "/" + name
		cfg.DSN = u.String()
		remove = func() error {
			admin, err := sql.Open("pgx", e.postgresDSN)
			if err != nil {
				return err
			}
			defer func() { _ = admin.Close() }()
			_, err = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			return err
		}
	default:
		return nil, nil, fmt.Errorf("unknown database driver %q", driver)
	}
	d, err = db.Open(ctx, cfg)
	if err != nil {
		return nil, nil, errors.Join(err, remove())
	}
	drop = func() error { return errors.Join(d.Close(), remove()) }
	if err := d.Migrate(ctx, outbox.Migrations); err != nil {
		return nil, nil, errors.Join(err, drop())
	}
	for _, stmt := range []string{
		// The use case's state: one row per order placed.
		`CREATE TABLE bench_orders (id TEXT PRIMARY KEY, seq INTEGER NOT NULL)`,
		// The handler's effect: one row per event handled.
		`CREATE TABLE bench_effects (event_id TEXT PRIMARY KEY, seq INTEGER NOT NULL)`,
	} {
		if _, err := d.ExecContext(ctx, stmt); err != nil {
			return nil, nil, errors.Join(err, drop())
		}
	}
	return d, drop, nil
}

// discard is the relay's destination in its ceiling rows: it counts what
// the relay forwards and records its latency, as a handler would.
type discard struct{ rec *recorder }

func (d discard) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		d.rec.record(sentOf(m.Payload))
	}
	return nil
}

func (discard) Close() error { return nil }

// Transactions of relay rows: a flood commits 100 events per transaction,
// so the relay, not the commits, is the bottleneck; paced, 10.
const relayBatch, relayHalfBatch = 100, 10

// delayedBy is how long after publishing the events of delayed rows are due.
const delayedBy = time.Second

// setupRelay commits events into the outbox, and the relay (started before
// the first commit) forwards them to a bus with one handler, or to discard.
// A delayed row publishes them due delayedBy later: the relay moves them
// into the outbox once due.
func setupRelay(ctx context.Context, e *env, r row, rec *recorder) (*target, error) {
	n := e.names(r.Kind)
	topic := bus.NewTopic[event](n.topic, 1)
	t, err := relayTo(ctx, e, r, n, func(*db.DB) bus.Handler {
		return bus.NewHandler(n.handler, topic, func(_ context.Context, ev bus.Event[event]) error {
			rec.record(ev.Payload.T)
			return nil
		}, bus.Concurrency(r.C))
	}, rec)
	if err != nil {
		return nil, err
	}
	t.publish = func(ctx context.Context, first, k int, sent int64) error {
		return t.d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
			for i := first; i < first+k; i++ {
				var err error
				if r.Kind == kindDelayed {
					// Stamped with the due time, so the latencies measured
					// are how late after it each event is handled.
					due := time.Unix(0, sent).Add(delayedBy)
					_, err = bus.PublishAt(ctx, outbox.Publisher(tx), topic, aggregateOf(i), newEvent(r.Payload, due.UnixNano()), due)
				} else {
					err = bus.Publish(ctx, outbox.Publisher(tx), topic, aggregateOf(i), newEvent(r.Payload, sent))
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	t.batch, t.halfBatch = relayBatch, relayHalfBatch
	return &t.target, nil
}

// relayTarget is a target with the database the relay reads.
type relayTarget struct {
	target
	d *db.DB
}

// relayTo opens the row's database and starts a relay from its outbox to
// r.Adapter's bus, where the handler handler builds handles, or to discard.
func relayTo(ctx context.Context, e *env, r row, n names, handler func(*db.DB) bus.Handler, rec *recorder) (*relayTarget, error) {
	d, drop, err := openDB(ctx, e, r.DB)
	if err != nil {
		return nil, err
	}
	closers := []func() error{drop}
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	var out message.Publisher = discard{rec}
	if r.Adapter != adapterDiscard {
		b, closeBus, err := destination(ctx, e, r.Adapter, n, handler(d))
		if err != nil {
			return nil, errors.Join(err, closeAll())
		}
		closers = append(closers, closeBus)
		out = b
	}
	relay, err := outbox.NewRelay(d, out, outbox.DefaultConfig(), quiet())
	if err != nil {
		return nil, errors.Join(err, closeAll())
	}
	if err := relay.Start(ctx); err != nil {
		return nil, errors.Join(err, closeAll())
	}
	closers = append(closers, relay.Close)
	return &relayTarget{target: target{close: closeAll}, d: d}, nil
}

// setupRealPath is the application's path: a use case commits its state
// and its event in one transaction, the relay forwards the event, and an
// outbox.NewHandler handler writes one row in the transaction that records
// the event as processed.
func setupRealPath(ctx context.Context, e *env, r row, rec *recorder) (*target, error) {
	n := e.names(r.Kind)
	topic := bus.NewTopic[event](n.topic, 1)
	t, err := relayTo(ctx, e, r, n, func(d *db.DB) bus.Handler {
		return outbox.NewHandler(d, n.handler, topic, func(ctx context.Context, ev bus.Event[event]) error {
			if _, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO bench_effects (event_id, seq) VALUES ($1, $2)`, ev.EventID, 0); err != nil {
				return err
			}
			// Before the handler's transaction commits: the latency is to
			// the handler's write.
			rec.record(ev.Payload.T)
			return nil
		}, bus.Concurrency(r.C))
	}, rec)
	if err != nil {
		return nil, err
	}
	t.publish = func(ctx context.Context, first, k int, sent int64) error {
		for i := first; i < first+k; i++ {
			if err := useCase(ctx, t.d, topic, fmt.Sprintf("order-%d", i), i, newEvent(r.Payload, sent)); err != nil {
				return err
			}
		}
		return nil
	}
	return &t.target, nil
}

// useCase places order seq: its state and its event, one transaction.
func useCase[T any](ctx context.Context, d *db.DB, topic bus.Topic[T], id string, seq int, payload T) error {
	return d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		if _, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO bench_orders (id, seq) VALUES ($1, $2)`, id, seq); err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		return bus.Publish(ctx, outbox.Publisher(tx), topic, id, payload)
	})
}

// setupCeiling does the real path's writes with no bus: per event, the use
// case's transaction (state row and outbox row), then, on c other
// goroutines, the handler's (processed-events row and effect row), handed
// over by a Go channel.
func setupCeiling(ctx context.Context, e *env, r row, rec *recorder) (*target, error) {
	n := e.names(r.Kind)
	topic := bus.NewTopic[event](n.topic, 1)
	d, drop, err := openDB(ctx, e, r.DB)
	if err != nil {
		return nil, err
	}
	// NewRelay creates the outbox tables; this relay never starts.
	if _, err := outbox.NewRelay(d, discard{rec}, outbox.DefaultConfig(), quiet()); err != nil {
		return nil, errors.Join(err, drop())
	}
	type written struct {
		eventID string
		seq     int
		sent    int64
	}
	queue := make(chan written, 1024)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		handErr error
	)
	for range r.C {
		wg.Go(func() {
			for w := range queue {
				err := d.InTx(context.WithoutCancel(ctx), func(ctx context.Context, _ *db.Tx) error {
					if _, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO processed_events (handler, event_id, processed_at) VALUES ($1, $2, $3)
						ON CONFLICT (handler, event_id) DO NOTHING`, n.handler, w.eventID, db.Now()); err != nil {
						return err
					}
					_, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO bench_effects (event_id, seq) VALUES ($1, $2)`, w.eventID, w.seq)
					return err
				})
				if err != nil {
					mu.Lock()
					handErr = errors.Join(handErr, err)
					mu.Unlock()
					continue
				}
				rec.record(w.sent)
			}
		})
	}
	return &target{
		publish: func(ctx context.Context, first, k int, sent int64) error {
			for i := first; i < first+k; i++ {
				id := fmt.Sprintf("order-%d", i)
				var eventID string
				err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
					if _, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO bench_orders (id, seq) VALUES ($1, $2)`, id, i); err != nil {
						return fmt.Errorf("insert order: %w", err)
					}
					msg, err := bus.NewMessage(ctx, topic, id, newEvent(r.Payload, sent))
					if err != nil {
						return err
					}
					eventID = msg.UUID
					return outbox.Publisher(tx).Publish(topic.Name(), msg)
				})
				if err != nil {
					return err
				}
				queue <- written{eventID, i, sent}
			}
			return nil
		},
		close: func() error {
			close(queue)
			wg.Wait()
			return errors.Join(handErr, drop())
		},
	}, nil
}
