package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox/internal/store"
)

// Scheduled events (bus.PublishAfter, bus.PublishAt, bus.RetryAfter) wait in
// the scheduled_events table, not in the outbox: the relay forwards the
// outbox in commit order, and an event due later would hold back every
// event behind it. Each relay moves the events that are due into the
// outbox, in the transaction that deletes them, every poll_interval; from
// there they travel as any event, so a scheduled event is delivered no
// earlier than due, and about one poll interval plus the relay's latency
// after.

// scheduledChunk is how many due events one transaction moves.
const scheduledChunk = 500

// Scheduled is an event waiting to be due.
type Scheduled struct {
	ID       string            `json:"id"`
	Topic    string            `json:"topic"`
	DueAt    time.Time         `json:"due_at"`
	Metadata map[string]string `json:"metadata"`
	Payload  json.RawMessage   `json:"payload"`
	// ScheduledAt is when it was published.
	ScheduledAt time.Time `json:"scheduled_at"`
}

// NewScheduler is the bus.Scheduler on d: what the bus reschedules
// ([bus.RetryAfter]) waits in d's scheduled_events, as a delayed publish
// through [Publisher] does, and survives a restart of every process.
func NewScheduler(d *db.DB) bus.Scheduler { return scheduler{d} }

type scheduler struct{ d *db.DB }

func (s scheduler) Schedule(ctx context.Context, topic string, at time.Time, msg *message.Message) error {
	return schedule(ctx, s.d.Q(ctx), topic, at, msg)
}

// schedule stores msg, due at at, through q.
func schedule(ctx context.Context, q store.DBTX, topic string, at time.Time, msg *message.Message) error {
	md, err := json.Marshal(msg.Metadata)
	if err != nil {
		return fmt.Errorf("outbox: schedule %s: %w", msg.UUID, err)
	}
	// Rounded up to the microsecond PostgreSQL keeps: never due early.
	due := at.UTC().Add(time.Microsecond - 1).Truncate(time.Microsecond)
	err = store.New(q).ScheduleEvent(ctx, store.ScheduleEventParams{
		ID: msg.UUID, Topic: topic, DueAt: due, Payload: msg.Payload, Metadata: string(md), ScheduledAt: db.Now(),
	})
	if err != nil {
		return fmt.Errorf("outbox: schedule %s on %s: %w", msg.UUID, topic, err)
	}
	return nil
}

// CancelScheduled removes the scheduled event id before it is due, within
// the transaction ctx carries if any. It reports false when no such event
// waits: unknown, cancelled already, or due and on its way.
func CancelScheduled(ctx context.Context, d *db.DB, id string) (bool, error) {
	n, err := store.New(d.Q(ctx)).CancelScheduledEvent(ctx, id)
	if err != nil {
		return false, fmt.Errorf("outbox: cancel scheduled event %s: %w", id, err)
	}
	return n > 0, nil
}

// ListScheduled returns up to limit scheduled events, the soonest due first.
func ListScheduled(ctx context.Context, d *db.DB, limit int) ([]Scheduled, error) {
	rows, err := store.New(d.Q(ctx)).ListScheduledEvents(ctx, int32(min(limit, 1<<30))) //nolint:gosec // G115: bounded above
	if err != nil {
		return nil, fmt.Errorf("outbox: list scheduled events: %w", err)
	}
	out := make([]Scheduled, len(rows)) // [] in JSON, not null, when none
	for i, r := range rows {
		out[i] = Scheduled{ID: r.ID, Topic: r.Topic, DueAt: r.DueAt.UTC(), Metadata: metadataOf(r), Payload: r.Payload, ScheduledAt: r.ScheduledAt.UTC()}
	}
	return out, nil
}

// moveDue writes up to scheduledChunk events that are due into the outbox,
// in the transaction that removes them from scheduled_events, and returns
// how many it moved. On PostgreSQL a relay doing the same at once waits for
// the rows and then finds them gone, so each event moves once.
func moveDue(ctx context.Context, d *db.DB) (int, error) {
	var moved int
	err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		rows, err := store.New(tx).TakeDueEvents(ctx, store.TakeDueEventsParams{Now: time.Now().UTC(), MaxEvents: scheduledChunk})
		if err != nil {
			return err
		}
		pub := Publisher(tx)
		for _, r := range rows {
			msg := message.NewMessage(r.ID, r.Payload)
			msg.Metadata = metadataOf(r)
			bus.ClearDue(msg)
			if err := pub.Publish(r.Topic, msg); err != nil {
				return err
			}
		}
		moved = len(rows)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: move due events: %w", err)
	}
	return moved, nil
}

// metadataOf is a scheduled event's metadata, empty when the row's does not
// decode: such an event is forwarded without an envelope, and its handlers
// poison it as undecodable instead of the relay failing on it for ever.
func metadataOf(r store.ScheduledEvent) message.Metadata {
	md := message.Metadata{}
	if err := json.Unmarshal([]byte(r.Metadata), &md); err != nil {
		return message.Metadata{}
	}
	return md
}
