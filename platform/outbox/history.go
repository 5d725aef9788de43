package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
)

// The outbox keeps every event it forwarded until outbox.retention prunes
// it: that is the event history, read here in commit order.

// HistoryEvent is one event of the history.
type HistoryEvent struct {
	// Offset is the event's row in the outbox.
	Offset        int64     `json:"offset"`
	ID            string    `json:"id"` // the event id (the message UUID)
	Topic         string    `json:"topic"`
	AggregateID   string    `json:"aggregate_id"`
	CorrelationID string    `json:"correlation_id"`
	OccurredAt    time.Time `json:"occurred_at"`
	// ReplayFor is the handler a replay addressed it to; empty for an
	// event as first published.
	ReplayFor string            `json:"replay_for,omitempty"`
	Metadata  map[string]string `json:"metadata"`
	Payload   json.RawMessage   `json:"payload"`
}

// HistoryFilter selects events of the history; a zero field selects all.
type HistoryFilter struct {
	// Topic is a topic name or a pattern (bus.Match).
	Topic         string
	AggregateID   string
	CorrelationID string
	// Since selects the events that occurred at or after it.
	Since time.Time
	// Limit is how many events to return at most; 0 returns all.
	Limit int
}

func (f HistoryFilter) match(e HistoryEvent) bool {
	return (f.Topic == "" || bus.Match(f.Topic, e.Topic)) &&
		(f.AggregateID == "" || f.AggregateID == e.AggregateID) &&
		(f.CorrelationID == "" || f.CorrelationID == e.CorrelationID) &&
		(f.Since.IsZero() || !e.OccurredAt.Before(f.Since))
}

// ErrEventNotFound is what HistoryEventByID returns for an id the history
// does not hold.
var ErrEventNotFound = errors.New("outbox: no such event in the history")

// History lists the events of d's outbox that f selects, in commit order:
// those forwarded and those waiting. Replays are listed too (ReplayFor).
// It reads the whole outbox, so its cost grows with outbox.retention.
func History(ctx context.Context, d *db.DB, f HistoryFilter) ([]HistoryEvent, error) {
	var out []HistoryEvent
	err := scanHistory(ctx, d, func(e HistoryEvent) bool {
		if f.match(e) {
			out = append(out, e)
		}
		return f.Limit <= 0 || len(out) < f.Limit
	})
	return out, err
}

// HistoryEventByID is the event of the history with id, as first published.
func HistoryEventByID(ctx context.Context, d *db.DB, id string) (HistoryEvent, error) {
	var found *HistoryEvent
	err := scanHistory(ctx, d, func(e HistoryEvent) bool {
		if e.ID == id && e.ReplayFor == "" {
			found = &e
			return false
		}
		return true
	})
	if err != nil {
		return HistoryEvent{}, err
	}
	if found == nil {
		return HistoryEvent{}, fmt.Errorf("%w: %s", ErrEventNotFound, id)
	}
	return *found, nil
}

// ReplayHistory delivers again, to the handler named handler only, the
// events of topic (the handler's topic, or its pattern) that f selects, as
// first published (replays are not replayed again), in commit order: each
// is written into the outbox again, with the same event id and envelope,
// addressed to the handler as a poison replay is, so the other handlers of
// its topic ignore it. A handler built with outbox.NewHandler applies each
// event once, so what it already applied is absorbed. It returns how many
// events it replayed.
func ReplayHistory(ctx context.Context, d *db.DB, handler, topic string, f HistoryFilter) (int, error) {
	if f.Topic != "" && !bus.IsPattern(f.Topic) && !bus.Match(topic, f.Topic) {
		return 0, fmt.Errorf("outbox: replay: handler %s consumes %s, not %s", handler, topic, f.Topic)
	}
	var msgs []bus.TopicMessage
	err := scanHistory(ctx, d, func(e HistoryEvent) bool {
		if e.ReplayFor == "" && bus.Match(topic, e.Topic) && f.match(e) {
			msg := message.NewMessage(e.ID, message.Payload(e.Payload))
			msg.Metadata = maps.Clone(e.Metadata)
			msg.Metadata.Set(bus.MetaReplayFor, handler)
			msgs = append(msgs, bus.TopicMessage{Topic: e.Topic, Message: msg})
		}
		return f.Limit <= 0 || len(msgs) < f.Limit
	})
	if err != nil {
		return 0, err
	}
	// A transaction per chunk: a long replay does not hold one open.
	for chunk := range slices.Chunk(msgs, insertChunk) {
		err := d.InTx(ctx, func(_ context.Context, tx *db.Tx) error {
			pub := Publisher(tx)
			for len(chunk) > 0 { // a run of one topic per statement
				n := 1
				for n < len(chunk) && chunk[n].Topic == chunk[0].Topic {
					n++
				}
				run := make([]*message.Message, n)
				for i, m := range chunk[:n] {
					run[i] = m.Message
				}
				if err := pub.Publish(chunk[0].Topic, run...); err != nil {
					return err
				}
				chunk = chunk[n:]
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("outbox: replay to %s: %w", handler, err)
		}
	}
	return len(msgs), nil
}

// scanHistory calls fn with each event of the outbox in commit order until
// fn returns false. Without the outbox table the history is empty.
func scanHistory(ctx context.Context, d *db.DB, fn func(HistoryEvent) bool) error {
	outbox, _, err := tablesExist(ctx, d)
	if err != nil || !outbox {
		return err
	}
	order := `"offset"`
	if d.Driver == db.DriverPostgres {
		order = `transaction_id, "offset"`
	}
	rows, err := d.QueryContext(ctx, `SELECT "offset", payload FROM "watermill_`+topic+`" ORDER BY `+order)
	if err != nil {
		return fmt.Errorf("outbox: read history: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			offset int64
			raw    []byte
		)
		if err := rows.Scan(&offset, &raw); err != nil {
			return fmt.Errorf("outbox: read history: %w", err)
		}
		e, err := historyEvent(offset, raw)
		if err != nil {
			return err
		}
		if !fn(e) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("outbox: read history: %w", err)
	}
	return nil
}

// historyEvent unwraps an outbox row's forwarder envelope.
func historyEvent(offset int64, raw []byte) (HistoryEvent, error) {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return HistoryEvent{}, fmt.Errorf("outbox: row %d: %w", offset, err)
	}
	md := env.Metadata
	if md == nil {
		md = map[string]string{}
	}
	occurred, _ := time.Parse(time.RFC3339Nano, md[bus.MetaOccurredAt])
	payload := json.RawMessage(env.Payload)
	if !json.Valid(payload) {
		// Not an event of a typed topic: kept as a JSON string.
		payload, _ = json.Marshal(string(env.Payload))
	}
	return HistoryEvent{
		Offset: offset, ID: env.UUID, Topic: env.DestinationTopic,
		AggregateID: md[bus.MetaAggregateID], CorrelationID: md[bus.MetaCorrelationID],
		OccurredAt: occurred, ReplayFor: md[bus.MetaReplayFor], Metadata: md, Payload: payload,
	}, nil
}
