package outbox

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"time"

	"github.com/example/monolith/platform/db"
)

// Backlog is what the outbox holds that the relay has not forwarded yet:
// events of committed transactions after the relay's offset. A transaction
// still open is not counted: its events are not visible to the relay either.
type Backlog struct {
	// Events is how many events wait to be forwarded.
	Events int64
	// Oldest is how long the oldest of them has waited since its
	// transaction wrote it; 0 when none waits. On SQLite the write time is
	// kept to the second, so it reads up to a second older.
	Oldest time.Duration
}

// ReadBacklog counts the events waiting in d's outbox. It reads only the
// relay's tables, takes no lock the relay waits for, and works from any
// instance. Before the relay first ran (the tables do not exist yet), the
// backlog is empty.
func ReadBacklog(ctx context.Context, d *db.DB) (Backlog, error) {
	query, args, err := backlogQuery(ctx, d)
	if err != nil || query == "" {
		return Backlog{}, err
	}
	var (
		b   Backlog
		age stdsql.NullFloat64
	)
	if err := d.QueryRowContext(ctx, query, args...).Scan(&b.Events, &age); err != nil {
		return Backlog{}, fmt.Errorf("outbox: read backlog: %w", err)
	}
	if age.Valid && age.Float64 > 0 {
		b.Oldest = time.Duration(age.Float64 * float64(time.Second))
	}
	return b, nil
}

// backlogQuery selects the count of unforwarded events and the age of the
// oldest in seconds; "" when there is no outbox table yet. Both read only the
// rows after the relay's offset, through the table's primary key.
func backlogQuery(ctx context.Context, d *db.DB) (string, []any, error) {
	outbox, offsets, err := tablesExist(ctx, d)
	if err != nil || !outbox {
		return "", nil, err
	}
	if d.Driver == db.DriverPostgres {
		// watermill-sql's order: (transaction id, offset) after the relay's
		// last (last_processed_transaction_id, offset_acked).
		after := `'0'::xid8 AS tx, 0::bigint AS off`
		if offsets {
			after = `COALESCE((SELECT last_processed_transaction_id FROM "watermill_offsets_` + topic + `" WHERE consumer_group = $1), '0'::xid8) AS tx,
				COALESCE((SELECT offset_acked FROM "watermill_offsets_` + topic + `" WHERE consumer_group = $1), 0) AS off`
		}
		query := `WITH relay AS (SELECT ` + after + `)
			SELECT COUNT(*), EXTRACT(EPOCH FROM LOCALTIMESTAMP - MIN(m.created_at))::float8
			FROM "watermill_` + topic + `" m, relay
			WHERE m.transaction_id >= relay.tx AND NOT (m.transaction_id = relay.tx AND m."offset" <= relay.off)`
		if offsets {
			return query, []any{consumerGroup}, nil
		}
		return query, nil, nil
	}
	after := `0`
	var args []any
	if offsets {
		after = `COALESCE((SELECT offset_acked FROM "watermill_offsets_` + topic + `" WHERE consumer_group = ?), 0)`
		args = []any{consumerGroup}
	}
	// created_at is CURRENT_TIMESTAMP: UTC, to the second.
	return `SELECT COUNT(*), (julianday('now') - julianday(MIN(created_at))) * 86400.0
		FROM "watermill_` + topic + `" WHERE "offset" > ` + after, args, nil
}

// tablesExist reports whether the outbox table and the offsets table
// exist: the relay creates them when it first starts.
func tablesExist(ctx context.Context, d *db.DB) (outbox, offsets bool, err error) {
	query := `SELECT
		EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'watermill_` + topic + `'),
		EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'watermill_offsets_` + topic + `')`
	if d.Driver == db.DriverPostgres {
		query = `SELECT to_regclass('"watermill_` + topic + `"') IS NOT NULL, to_regclass('"watermill_offsets_` + topic + `"') IS NOT NULL`
	}
	if err := d.QueryRowContext(ctx, query).Scan(&outbox, &offsets); err != nil {
		return false, false, fmt.Errorf("outbox: look for the outbox tables: %w", err)
	}
	return outbox, offsets, nil
}
