// Package poison keeps every message that reached the poison topic in the
// database, whatever the adapter, and lets operators inspect, replay and
// purge them from the CLI (`app poison ...`) or over HTTP (/api/ops/poison,
// on the admin listener). Every replay and purge is recorded in an audit
// table: who, through what, on what, when and how many.
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
	"strings"
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

// ErrUnfiltered is returned by PurgeAll for a filter that selects every
// message without saying so with All.
var ErrUnfiltered = errors.New("purging every poisoned message needs All (--all, all=true); give a topic or a handler to purge some")

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
	// All confirms that a purge with neither Topic nor Handler is meant to
	// remove every message.
	All bool
}

// selectsEverything reports whether f filters on nothing.
func (f Filter) selectsEverything() bool { return f.Topic == "" && f.Handler == "" }

// Actor is who replays or purges, as the audit records it.
type Actor struct {
	// Who is the admin token's id (httpx.TokenID), "local" (httpx.LocalOperator),
	// or "app" for the serving app's pruning.
	Who string
	// Via is ViaHTTP, ViaCLI or ViaRetention.
	Via string
}

// Ways an Actor reaches the store.
const (
	ViaHTTP = "http"
	ViaCLI  = "cli"
	// ViaRetention is the serving app's pruning (outbox.retention).
	ViaRetention = "retention"
)

// Actions the audit records.
const (
	ActionReplay = "replay"
	ActionPurge  = "purge"
)

// AuditEntry is one replay or purge.
type AuditEntry struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Who    string    `json:"who"`
	Via    string    `json:"via"`
	Action string    `json:"action"`
	// MessageID is the poisoned message's id when one was named; Topic
	// and Handler are then that message's, else the filter's (both empty:
	// every message).
	MessageID string `json:"message_id,omitempty"`
	Topic     string `json:"topic,omitempty"`
	Handler   string `json:"handler,omitempty"`
	// Messages is how many messages the action replayed or purged.
	Messages int64 `json:"messages"`
}

// Target is what the entry acted on, in a few words: a message id, a
// filter such as "topic=a handler=b", or "all".
func (e AuditEntry) Target() string {
	if e.MessageID != "" {
		return e.MessageID
	}
	var parts []string
	if e.Topic != "" {
		parts = append(parts, "topic="+e.Topic)
	}
	if e.Handler != "" {
		parts = append(parts, "handler="+e.Handler)
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
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

// Replay sends the message back to the handler that failed on it, and
// records that by did.
func (s *Store) Replay(ctx context.Context, by Actor, id string) error {
	return s.db.InTx(ctx, func(ctx context.Context, _ *db.Tx) error {
		m, err := s.replay(ctx, id)
		if err != nil {
			return err
		}
		return s.record(ctx, by, ActionReplay, AuditEntry{MessageID: id, Topic: m.Topic, Handler: m.Handler, Messages: 1})
	})
}

// replay removes the message and re-publishes it through the outbox, in
// ctx's transaction or one of its own.
func (s *Store) replay(ctx context.Context, id string) (Message, error) {
	var m Message
	err := s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		r, err := s.take(ctx, id)
		if err != nil {
			return err
		}
		if m, err = toMessage(r); err != nil {
			return err
		}
		return outbox.Publisher(tx).Publish(m.Topic, replayMessage(m))
	})
	return m, err
}

// take deletes message id, in ctx's transaction, and returns it.
func (s *Store) take(ctx context.Context, id string) (store.PoisonMessage, error) {
	q := store.New(s.db.Q(ctx))
	r, err := q.GetPoisoned(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, err
	}
	_, err = q.DeletePoisoned(ctx, id)
	return r, err
}

// ReplayAll replays every message f selects (f.Limit is ignored), records
// that by did, and returns how many it replayed.
func (s *Store) ReplayAll(ctx context.Context, by Actor, f Filter) (int, error) {
	n, err := s.each(ctx, f, func(ctx context.Context, id string) error {
		_, err := s.replay(ctx, id)
		return err
	})
	// What was replayed before a failure is recorded too.
	return n, errors.Join(err, s.record(context.WithoutCancel(ctx), by, ActionReplay, AuditEntry{Topic: f.Topic, Handler: f.Handler, Messages: int64(n)}))
}

// Purge deletes one message and records that by did.
func (s *Store) Purge(ctx context.Context, by Actor, id string) error {
	return s.db.InTx(ctx, func(ctx context.Context, _ *db.Tx) error {
		r, err := s.take(ctx, id)
		if err != nil {
			return err
		}
		return s.record(ctx, by, ActionPurge, AuditEntry{MessageID: id, Topic: r.Topic, Handler: r.Handler, Messages: 1})
	})
}

// PurgeAll deletes every message f selects (f.Limit is ignored), records
// that by did, and returns how many. A filter on neither topic nor handler
// needs f.All, else it is ErrUnfiltered and nothing is deleted.
func (s *Store) PurgeAll(ctx context.Context, by Actor, f Filter) (int, error) {
	if f.selectsEverything() && !f.All {
		return 0, ErrUnfiltered
	}
	var n int64
	err := s.db.InTx(ctx, func(ctx context.Context, _ *db.Tx) error {
		var err error
		if n, err = store.New(s.db.Q(ctx)).PurgePoisoned(ctx, store.PurgePoisonedParams{Topic: f.Topic, Handler: f.Handler}); err != nil {
			return err
		}
		return s.record(ctx, by, ActionPurge, AuditEntry{Topic: f.Topic, Handler: f.Handler, Messages: n})
	})
	if err != nil {
		return 0, fmt.Errorf("purge poisoned messages: %w", err)
	}
	return int(n), nil
}

// record adds e, done by by, to the audit, in ctx's transaction if any.
func (s *Store) record(ctx context.Context, by Actor, action string, e AuditEntry) error {
	err := store.New(s.db.Q(ctx)).RecordAudit(ctx, store.RecordAuditParams{
		ID: uuid.Must(uuid.NewV7()).String(), OccurredAt: db.Now(), Who: by.Who, Via: by.Via, Action: action,
		MessageID: e.MessageID, Topic: e.Topic, Handler: e.Handler, Messages: e.Messages,
	})
	if err != nil {
		return fmt.Errorf("record %s in the poison audit: %w", action, err)
	}
	return nil
}

// Audit returns the latest limit replays and purges (0: 100), newest first.
func (s *Store) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := store.New(s.db.Q(ctx)).ListAudit(ctx, int32(min(limit, math.MaxInt32)))
	if err != nil {
		return nil, fmt.Errorf("list the poison audit: %w", err)
	}
	out := make([]AuditEntry, 0, len(rows))
	for _, r := range rows {
		out = append(out, AuditEntry{
			ID: r.ID, At: r.OccurredAt.UTC(), Who: r.Who, Via: r.Via, Action: r.Action,
			MessageID: r.MessageID, Topic: r.Topic, Handler: r.Handler, Messages: r.Messages,
		})
	}
	return out, nil
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
		err := fn(ctx, m.ID)
		if errors.Is(err, ErrNotFound) {
			continue // gone since it was listed
		}
		if err != nil {
			return done, err
		}
		done++
	}
	return done, nil
}

// replayMessage is m as first published, addressed to the handler that
// failed, with a fresh budget of attempts.
func replayMessage(m Message) *message.Message {
	msg := message.NewMessage(m.MessageID, m.Payload)
	msg.Metadata = maps.Clone(m.Metadata)
	for _, k := range []string{middleware.ReasonForPoisonedKey, middleware.PoisonedTopicKey, middleware.PoisonedHandlerKey,
		middleware.PoisonedSubscriberKey, bus.MetaAttempts, bus.MetaAttemptsMade} {
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

// Prune removes the messages poisoned before before, a chunk at a time,
// and records it in the audit as a purge by "app" via "retention". It
// returns how many it removed.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	n, err := outbox.DeleteInChunks(ctx, func(ctx context.Context, limit int32) (int64, error) {
		return store.New(s.db.Q(ctx)).PruneOldPoisoned(ctx, store.PruneOldPoisonedParams{Before: before, Chunk: limit})
	})
	if err != nil {
		return n, fmt.Errorf("poison: prune: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	return n, s.record(ctx, Actor{Who: "app", Via: ViaRetention}, ActionPurge, AuditEntry{Messages: n})
}
