// Package outbox makes a context's state changes and the events they cause
// one transaction, and event handlers' effects exactly-once:
//
//   - [Publisher] writes events into the outbox table inside the caller's
//     transaction (watermill-sql rows holding components/forwarder
//     envelopes); the [Relay] forwards committed events to the bus in
//     batches, pipelined on the broker, in commit order, at least once.
//   - [NewHandler] records (handler, event id) in the transaction of the
//     handler's own writes, so a redelivered event is acked without effect.
//     The handler's ctx carries that transaction, and the use case it
//     calls joins it by querying through d.Q(ctx) and d.InTx(ctx, ...); a
//     read through the pool would instead wait, on SQLite's one connection,
//     for the connection the transaction holds.
//
// Both work on SQLite and PostgreSQL.
package outbox

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox/internal/store"
	"github.com/example/monolith/platform/telemetry"
)

// Migrations creates processed_events, the record idempotent handlers keep;
// the application applies it through Module, tests directly.
var Migrations = store.Migrations

// topic is the SQL topic events wait in: tables watermill_outbox and
// watermill_offsets_outbox.
const topic = "outbox"

// Config is the outbox section of the configuration file.
type Config struct {
	// PollInterval is how often the relay looks for new events when idle.
	PollInterval time.Duration `yaml:"poll_interval"`
	// BatchSize is how many events the relay reads, publishes pipelined and
	// marks forwarded per transaction: at most what a crash mid-batch
	// forwards again.
	BatchSize int `yaml:"batch_size"`
	// Retention is how long forwarded events stay in the outbox (the event
	// history), handlers' processed-events records and what other packages
	// prune (AsPruner: the poison store) stay, pruned hourly by the serving
	// app; 0 keeps them forever.
	Retention time.Duration `yaml:"retention"`
}

// DefaultConfig polls every 50ms and forwards up to 500 events per
// transaction: enough in flight that a broker's confirm latency (an fsync
// on RabbitMQ) is paid once for many events. It keeps 30 days of history.
func DefaultConfig() Config {
	return Config{PollInterval: 50 * time.Millisecond, BatchSize: 500, Retention: 30 * 24 * time.Hour}
}

// Validate reports invalid keys by their path in the file.
func (c Config) Validate() error {
	var errs []error
	if c.PollInterval <= 0 {
		errs = append(errs, fmt.Errorf("outbox.poll_interval: must be > 0, got %s", c.PollInterval))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("outbox.batch_size: must be >= 1, got %d", c.BatchSize))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("outbox.retention: must be >= 0 (0 keeps everything), got %s", c.Retention))
	}
	return errors.Join(errs...)
}

func schemaFor(driver string, batchSize int) (sql.SchemaAdapter, sql.OffsetsAdapter) {
	if driver == db.DriverPostgres {
		return sql.DefaultPostgreSQLSchema{SubscribeBatchSize: batchSize}, sql.DefaultPostgreSQLOffsetsAdapter{}
	}
	return sqliteSchema{batchSize: batchSize}, sqliteOffsets{}
}

// Publisher returns a publisher that writes events into tx's outbox: they
// reach the bus once, and only if, tx commits.
//
//	err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
//		if err := store.New(d.Q(ctx)).CreateUser(ctx, params); err != nil {
//			return err
//		}
//		return bus.Publish(ctx, outbox.Publisher(tx), topics.UserRegistered, id, payload)
//	})
func Publisher(tx *db.Tx) bus.Publisher { return txPublisher{tx} }

type txPublisher struct{ tx *db.Tx }

// insertChunk is how many events one INSERT carries: 3 parameters each stay
// under SQLite's 32,766 and PostgreSQL's 65,535 per statement.
const insertChunk = 1000

// Publish wraps msgs in forwarder envelopes naming their topic and inserts
// them into the outbox table within the transaction, each in a span whose
// context the row keeps for the relay: one INSERT per insertChunk events, so
// a batch ([bus.PublishBatch]) costs one statement, not one per event.
//
// A message due later (bus.PublishAfter, bus.PublishAt) goes into
// scheduled_events instead, in the same transaction; the relay moves it
// into the outbox once due.
func (p txPublisher) Publish(destination string, msgs ...*message.Message) error {
	now := time.Now()
	for i, msg := range msgs {
		at, delayed, err := bus.DueAt(msg)
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		if !delayed {
			continue
		}
		if !at.After(now) {
			bus.ClearDue(msg) // due already: an event like any other
			continue
		}
		// The rare case: the events before it, it, then the rest.
		if err := p.insert(destination, msgs[:i]...); err != nil {
			return err
		}
		if err := schedule(msg.Context(), p.tx, destination, at, msg); err != nil {
			return err
		}
		return p.Publish(destination, msgs[i+1:]...)
	}
	return p.insert(destination, msgs...)
}

// insert writes msgs into the outbox.
func (p txPublisher) insert(destination string, msgs ...*message.Message) (err error) {
	if len(msgs) == 0 {
		return nil
	}
	spans := make([]trace.Span, len(msgs))
	for i, msg := range msgs {
		spans[i] = startInsert(destination, p.tx.Driver, msg)
	}
	defer func() {
		for _, span := range spans {
			telemetry.End(span, err)
		}
	}()
	schema, _ := schemaFor(p.tx.Driver, 1)
	pub, err := sql.NewPublisher(sql.TxFromStdSQL(p.tx.Tx), sql.PublisherConfig{SchemaAdapter: schema}, watermill.NopLogger{})
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	fwd := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: topic})
	for chunk := range slices.Chunk(msgs, insertChunk) {
		if err := fwd.Publish(destination, chunk...); err != nil {
			return err
		}
	}
	return nil
}
