package outbox

import (
	stdsql "database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// watermill-sql ships schema adapters for PostgreSQL and MySQL only; these
// two give SQLite the same outbox table and offset bookkeeping. SQLite runs
// on one connection, so transactions commit in the order their rows get
// offsets and the relay cannot skip a row committed late (the problem
// PostgreSQL's adapter solves with transaction ids).

// sqliteSchema stores messages in watermill_<topic>.
type sqliteSchema struct{ batchSize int }

func (s sqliteSchema) table(topic string) string { return `"watermill_` + topic + `"` }

func (s sqliteSchema) SchemaInitializingQueries(p sql.SchemaInitializingQueriesParams) ([]sql.Query, error) {
	return []sql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + s.table(p.Topic) + ` (
		"offset"   INTEGER PRIMARY KEY AUTOINCREMENT,
		uuid       TEXT NOT NULL,
		created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
		payload    BLOB,
		metadata   TEXT
	)`}}, nil
}

func (s sqliteSchema) InsertQuery(p sql.InsertQueryParams) (sql.Query, error) {
	args := make([]any, 0, 3*len(p.Msgs))
	for _, msg := range p.Msgs {
		md, err := json.Marshal(msg.Metadata)
		if err != nil {
			return sql.Query{}, fmt.Errorf("marshal metadata of %s: %w", msg.UUID, err)
		}
		args = append(args, msg.UUID, []byte(msg.Payload), string(md))
	}
	return sql.Query{
		Query: `INSERT INTO ` + s.table(p.Topic) + ` (uuid, payload, metadata) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?,?,?),", len(p.Msgs)), ","),
		Args: args,
	}, nil
}

func (s sqliteSchema) SelectQuery(p sql.SelectQueryParams) (sql.Query, error) {
	next, err := p.OffsetsAdapter.NextOffsetQuery(sql.NextOffsetQueryParams{Topic: p.Topic, ConsumerGroup: p.ConsumerGroup})
	if err != nil {
		return sql.Query{}, err
	}
	return sql.Query{
		Query: fmt.Sprintf(`SELECT "offset", uuid, payload, metadata FROM %s WHERE "offset" > (%s) ORDER BY "offset" LIMIT %d`,
			s.table(p.Topic), next.Query, s.batchSize),
		Args: next.Args,
	}, nil
}

func (s sqliteSchema) UnmarshalMessage(p sql.UnmarshalMessageParams) (sql.Row, error) {
	var (
		r  sql.Row
		md stdsql.NullString
	)
	if err := p.Row.Scan(&r.Offset, &r.UUID, &r.Payload, &md); err != nil {
		return sql.Row{}, fmt.Errorf("scan outbox row: %w", err)
	}
	r.Metadata = []byte(md.String)
	r.Msg = message.NewMessage(string(r.UUID), r.Payload)
	if md.Valid && md.String != "" {
		if err := json.Unmarshal(r.Metadata, &r.Msg.Metadata); err != nil {
			return sql.Row{}, fmt.Errorf("unmarshal outbox metadata: %w", err)
		}
	}
	return r, nil
}

// SubscribeIsolationLevel is the default: SQLite transactions are serializable.
func (s sqliteSchema) SubscribeIsolationLevel() stdsql.IsolationLevel { return stdsql.LevelDefault }

// sqliteOffsets keeps each consumer group's last acked offset.
type sqliteOffsets struct{}

func (sqliteOffsets) table(topic string) string { return `"watermill_offsets_` + topic + `"` }

func (a sqliteOffsets) SchemaInitializingQueries(p sql.OffsetsSchemaInitializingQueriesParams) ([]sql.Query, error) {
	return []sql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + a.table(p.Topic) + ` (
		consumer_group  TEXT PRIMARY KEY,
		offset_acked    INTEGER,
		offset_consumed INTEGER NOT NULL
	)`}}, nil
}

func (a sqliteOffsets) AckMessageQuery(p sql.AckMessageQueryParams) (sql.Query, error) {
	return sql.Query{
		Query: `INSERT INTO ` + a.table(p.Topic) + ` (offset_consumed, offset_acked, consumer_group) VALUES (?, ?, ?)
			ON CONFLICT (consumer_group) DO UPDATE SET offset_consumed = excluded.offset_consumed, offset_acked = excluded.offset_acked`,
		Args: []any{p.LastRow.Offset, p.LastRow.Offset, p.ConsumerGroup},
	}, nil
}

func (a sqliteOffsets) ConsumedMessageQuery(p sql.ConsumedMessageQueryParams) (sql.Query, error) {
	return sql.Query{
		Query: `INSERT INTO ` + a.table(p.Topic) + ` (offset_consumed, consumer_group) VALUES (?, ?)
			ON CONFLICT (consumer_group) DO UPDATE SET offset_consumed = excluded.offset_consumed`,
		Args: []any{p.Row.Offset, p.ConsumerGroup},
	}, nil
}

func (a sqliteOffsets) NextOffsetQuery(p sql.NextOffsetQueryParams) (sql.Query, error) {
	return sql.Query{
		Query: `SELECT COALESCE((SELECT offset_acked FROM ` + a.table(p.Topic) + ` WHERE consumer_group = ?), 0)`,
		Args:  []any{p.ConsumerGroup},
	}, nil
}

func (sqliteOffsets) BeforeSubscribingQueries(sql.BeforeSubscribingQueriesParams) ([]sql.Query, error) {
	return nil, nil
}
