// Package poison keeps every message that reached the poison topic in the
// database, whatever the adapter, and lets operators inspect, replay and
// purge them from the CLI (`app poison ...`) or over HTTP (/api/ops/poison).
//
// A replay goes through the outbox: in one transaction the stored message is
// removed and re-published, with its original id and correlation id, to its
// original topic, addressed to the handler that failed (other handlers of
// the topic ignore it). If it fails again it comes back to the store.
package poison

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/poison/internal/store"
)

// ErrNotFound is returned for an unknown id.
var ErrNotFound = errors.New("poisoned message not found")

// Message is a stored poisoned message.
type Message struct {
	ID         string            `json:"id"`
	MessageID  string            `json:"message_id"` // the event id for events
	Topic      string            `json:"topic"`
	Handler    string            `json:"handler"`
	Reason     string            `json:"reason"`
	Attempts   int64             `json:"attempts"`
	Payload    []byte            `json:"payload"`
	Metadata   map[string]string `json:"metadata"`
	PoisonedAt time.Time         `json:"poisoned_at"`
}

// Filter selects messages by original topic and handler; empty matches all.
type Filter struct {
	Topic   string
	Handler string
	Limit   int // 0: 100
}

// Store is the poison store.
type Store struct{ db *db.DB }

// NewStore returns the store over d.
func NewStore(d *db.DB) *Store { return &Store{db: d} }

// Handler stores what reaches the poison topic; a redelivery overwrites the
// same row.
func (s *Store) Handler() bus.Handler {
	return bus.NewPoisonHandler("poison.store", func(ctx context.Context, p bus.PoisonedMessage) error {
		return s.Save(ctx, p)
	})
}

// Save stores p.
func (s *Store) Save(ctx context.Context, p bus.PoisonedMessage) error {
	md, err := json.Marshal(p.Metadata)
	if err != nil {
		return err
	}
	payload := p.Payload
	if payload == nil {
		payload = []byte{}
	}
	return store.New(s.db.Q(ctx)).SavePoisoned(ctx, store.SavePoisonedParams{
		ID: uuid.Must(uuid.NewV7()).String(), MessageID: p.ID, Topic: p.Topic, Handler: p.Handler,
		Reason: p.Reason, Attempts: int64(p.Attempts), Payload: payload, Metadata: string(md),
		PoisonedAt: db.Now(),
	})
}

// List returns the messages f selects, oldest first.
func (s *Store) List(ctx context.Context, f Filter) ([]Message, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := store.New(s.db.Q(ctx)).ListPoisoned(ctx, store.ListPoisonedParams{Topic: f.Topic, Handler: f.Handler, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list poisoned messages: %w", err)
	}
	out := make([]Message, 0, len(rows))
	for _, r := range rows {
		m, err := toMessage(r)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Count returns how many messages f selects.
func (s *Store) Count(ctx context.Context, f Filter) (int64, error) {
	return store.New(s.db.Q(ctx)).CountPoisoned(ctx, store.CountPoisonedParams{Topic: f.Topic, Handler: f.Handler})
}

// Get returns one message.
func (s *Store) Get(ctx context.Context, id string) (Message, error) {
	r, err := store.New(s.db.Q(ctx)).GetPoisoned(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("get poisoned message %s: %w", id, err)
	}
	return toMessage(r)
}

// Replay sends the message back to the handler that failed on it.
func (s *Store) Replay(ctx context.Context, id string) error {
	return s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		q := store.New(s.db.Q(ctx))
		r, err := q.GetPoisoned(ctx, id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		m, err := toMessage(r)
		if err != nil {
			return err
		}
		if _, err := q.DeletePoisoned(ctx, id); err != nil {
			return err
		}
		return outbox.Publisher(tx).Publish(m.Topic, replayMessage(m))
	})
}

// ReplayAll replays every message f selects (f.Limit is ignored) and
// returns how many.
func (s *Store) ReplayAll(ctx context.Context, f Filter) (int, error) {
	return s.each(ctx, f, s.Replay)
}

// Purge deletes one message.
func (s *Store) Purge(ctx context.Context, id string) error {
	n, err := store.New(s.db.Q(ctx)).DeletePoisoned(ctx, id)
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// PurgeAll deletes every message f selects and returns how many.
func (s *Store) PurgeAll(ctx context.Context, f Filter) (int, error) {
	return s.each(ctx, f, s.Purge)
}

// each applies fn to the messages selected now; what fails again during
// a replay-all comes back with a new id and is not replayed twice.
func (s *Store) each(ctx context.Context, f Filter, fn func(context.Context, string) error) (int, error) {
	selected, err := s.List(ctx, Filter{Topic: f.Topic, Handler: f.Handler, Limit: math.MaxInt32})
	if err != nil {
		return 0, err
	}
	done := 0
	for _, m := range selected {
		if err := fn(ctx, m.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return done, err
		}
		done++
	}
	return done, nil
}

// replayMessage is m as first published, addressed to the handler that failed.
func replayMessage(m Message) *message.Message {
	msg := message.NewMessage(m.MessageID, m.Payload)
	msg.Metadata = maps.Clone(m.Metadata)
	for _, k := range []string{middleware.ReasonForPoisonedKey, middleware.PoisonedTopicKey, middleware.PoisonedHandlerKey,
		middleware.PoisonedSubscriberKey, bus.MetaAttempts} {
		delete(msg.Metadata, k)
	}
	msg.Metadata.Set(bus.MetaReplayFor, m.Handler)
	return msg
}

func toMessage(r store.PoisonMessage) (Message, error) {
	m := Message{
		ID: r.ID, MessageID: r.MessageID, Topic: r.Topic, Handler: r.Handler, Reason: r.Reason,
		Attempts: r.Attempts, Payload: r.Payload, PoisonedAt: r.PoisonedAt.UTC(),
	}
	if err := json.Unmarshal([]byte(r.Metadata), &m.Metadata); err != nil {
		return Message{}, fmt.Errorf("poisoned message %s: metadata: %w", r.ID, err)
	}
	return m, nil
}
