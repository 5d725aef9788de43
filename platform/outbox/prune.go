package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.uber.org/fx"

	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox/internal/store"
)

// pruneChunk bounds the rows one DELETE removes, so that pruning a large
// history never holds its locks (on SQLite, the one connection) for long.
const pruneChunk int32 = 5000

// pruneInterval is how often the serving app prunes.
const pruneInterval = time.Hour

// A Pruner removes from one store of the application's history what is
// older than the retention and returns how many rows it removed. The
// outbox contributes its own two; a package that keeps another store
// contributes one with AsPruner, and the serving app runs them all every
// pruneInterval.
type Pruner struct {
	// What names the rows, for the log: "poisoned messages".
	What  string
	Prune func(ctx context.Context, retention time.Duration) (int64, error)
}

// AsPruner annotates a constructor of a Pruner for the outbox.pruners group.
func AsPruner(f any) any { return fx.Annotate(f, fx.ResultTags(`group:"outbox.pruners"`)) }

// DeleteInChunks runs del, which deletes at most limit rows and says how
// many it did, until a run deletes fewer, so that pruning a large history
// never holds its locks (on SQLite, the one connection) for long. It
// returns how many rows went in all.
func DeleteInChunks(ctx context.Context, del func(ctx context.Context, limit int32) (int64, error)) (int64, error) {
	var total int64
	for {
		n, err := del(ctx, pruneChunk)
		if total += n; err != nil || n < int64(pruneChunk) {
			return total, err
		}
	}
}

// Pruned is what one Prune removed.
type Pruned struct {
	// Events is the outbox rows (events the relay forwarded) removed.
	Events int64
	// Processed is the processed-events records removed.
	Processed int64
}

// Prune removes from d what is older than retention: the outbox's events
// that the relay forwarded (an event it has not forwarded stays, however
// old) and the processed-events records of idempotent handlers. An event
// delivered again after its record was pruned would be applied again, so
// retention must outlast any redelivery: days, not minutes.
func Prune(ctx context.Context, d *db.DB, retention time.Duration) (Pruned, error) {
	var p Pruned
	if retention <= 0 {
		return p, fmt.Errorf("outbox: prune: retention must be > 0, got %s", retention)
	}
	var err error
	if p.Processed, err = pruneProcessed(ctx, d, retention); err != nil {
		return p, err
	}
	p.Events, err = pruneEvents(ctx, d, retention)
	return p, err
}

// pruners are the outbox's own: processed-events records and forwarded events.
func pruners(d *db.DB) []Pruner {
	return []Pruner{
		{What: "processed-events records", Prune: func(ctx context.Context, r time.Duration) (int64, error) { return pruneProcessed(ctx, d, r) }},
		{What: "forwarded events", Prune: func(ctx context.Context, r time.Duration) (int64, error) { return pruneEvents(ctx, d, r) }},
	}
}

func pruneProcessed(ctx context.Context, d *db.DB, retention time.Duration) (int64, error) {
	before := db.Now().Add(-retention)
	n, err := DeleteInChunks(ctx, func(ctx context.Context, limit int32) (int64, error) {
		return store.New(d.Q(ctx)).PruneProcessed(ctx, store.PruneProcessedParams{Before: before, Chunk: limit})
	})
	if err != nil {
		return n, fmt.Errorf("outbox: prune processed events: %w", err)
	}
	return n, nil
}

func pruneEvents(ctx context.Context, d *db.DB, retention time.Duration) (int64, error) {
	query, args, err := pruneEventsQuery(ctx, d, retention)
	if err != nil || query == "" {
		return 0, err
	}
	n, err := DeleteInChunks(ctx, func(ctx context.Context, limit int32) (int64, error) {
		res, err := d.ExecContext(ctx, query, append(args, limit)...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	})
	if err != nil {
		return n, fmt.Errorf("outbox: prune forwarded events: %w", err)
	}
	return n, nil
}

// pruneEventsQuery deletes forwarded events written more than retention
// ago, up to a limit its last argument, which the caller appends; "" when the relay has no tables yet. Forwarded is
// the relay's order, as in backlogQuery: on PostgreSQL (transaction id,
// offset) up to its last, on SQLite offsets up to its last.
func pruneEventsQuery(ctx context.Context, d *db.DB, retention time.Duration) (string, []any, error) {
	outbox, offsets, err := tablesExist(ctx, d)
	if err != nil || !outbox || !offsets {
		return "", nil, err // without the relay's offset, nothing was forwarded
	}
	table, offsetsTable := `"watermill_`+topic+`"`, `"watermill_offsets_`+topic+`"`
	if d.Driver == db.DriverPostgres {
		return `DELETE FROM ` + table + ` WHERE "offset" IN (
			SELECT m."offset" FROM ` + table + ` m, ` + offsetsTable + ` r
			WHERE r.consumer_group = $1
				AND (m.transaction_id < r.last_processed_transaction_id
					OR (m.transaction_id = r.last_processed_transaction_id AND m."offset" <= r.offset_acked))
				AND m.created_at < LOCALTIMESTAMP - make_interval(secs => $2)
			ORDER BY m."offset" LIMIT $3)`, []any{consumerGroup, retention.Seconds()}, nil
	}
	// created_at is CURRENT_TIMESTAMP: UTC, to the second.
	return `DELETE FROM ` + table + ` WHERE "offset" IN (
		SELECT "offset" FROM ` + table + `
		WHERE "offset" <= COALESCE((SELECT offset_acked FROM ` + offsetsTable + ` WHERE consumer_group = ?), 0)
			AND created_at < datetime('now', ?)
		ORDER BY "offset" LIMIT ?)`, []any{consumerGroup, fmt.Sprintf("-%d seconds", int64(retention.Seconds()))}, nil
}

// pruner runs every Pruner every pruneInterval, from start-up, while the
// app serves.
type pruner struct {
	retention time.Duration
	pruners   []Pruner
	logger    *slog.Logger
	stop      chan struct{}
	done      chan struct{}
}

func (p *pruner) start(context.Context) error {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		tick := time.NewTicker(pruneInterval)
		defer tick.Stop()
		for {
			p.prune()
			select {
			case <-tick.C:
			case <-p.stop:
				return
			}
		}
	}()
	return nil
}

func (p *pruner) prune() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for _, o := range p.pruners {
		n, err := o.Prune(ctx, p.retention)
		switch {
		case err != nil && ctx.Err() == nil:
			p.logger.Error("Pruning the history failed; retrying in an hour", "what", o.What, "error", err)
		case n > 0:
			p.logger.Info("Pruned the history", "what", o.What, "retention", p.retention, "rows", n)
		}
	}
}

func (p *pruner) close(context.Context) error {
	close(p.stop)
	<-p.done
	return nil
}
