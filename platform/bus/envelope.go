package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// Metadata keys of the envelope. They travel as Watermill message metadata,
// which every adapter carries (AMQP headers, Redis stream fields).
const (
	MetaEventID       = "event_id"
	MetaEventType     = "event_type"
	MetaOccurredAt    = "occurred_at"
	MetaAggregateID   = "aggregate_id"
	MetaAggregateType = "aggregate_type"
	MetaSchemaVersion = "schema_version"
	MetaCorrelationID = middleware.CorrelationIDMetadataKey
	MetaCausationID   = "causation_id"
	MetaSource        = "source"

	// MetaReplayFor addresses a replayed message to the one handler that
	// failed on it; the topic's other handlers ack it without running.
	MetaReplayFor = "replay_for"

	// metaUndecodable marks a message the adapter could not decode; the
	// handler sends it to the poison topic instead of failing the subscription.
	metaUndecodable = "undecodable_reason"
)

// Envelope describes an event independently of its payload.
type Envelope struct {
	EventID       string    // UUIDv7, also the Watermill message UUID
	EventType     string    // the topic name
	OccurredAt    time.Time // UTC
	AggregateID   string
	AggregateType string
	SchemaVersion int
	CorrelationID string // shared by every event caused by one request
	CausationID   string // id of the event being handled when this one was published
	Source        string // the bounded context that published it
}

// Event is a decoded event as a handler receives it.
type Event[T any] struct {
	Envelope
	Payload T
}

// metadataHint sizes a new event's metadata for the envelope's nine keys
// and the trace context publishers add, so the map is never regrown.
const metadataHint = 12

// setOn writes e into msg's metadata, a new message's.
func (e Envelope) setOn(msg *message.Message) {
	if len(msg.Metadata) == 0 {
		msg.Metadata = make(message.Metadata, metadataHint)
	}
	msg.Metadata.Set(MetaEventID, e.EventID)
	msg.Metadata.Set(MetaEventType, e.EventType)
	msg.Metadata.Set(MetaOccurredAt, e.OccurredAt.UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(MetaAggregateID, e.AggregateID)
	msg.Metadata.Set(MetaAggregateType, e.AggregateType)
	msg.Metadata.Set(MetaSchemaVersion, strconv.Itoa(e.SchemaVersion))
	msg.Metadata.Set(MetaCorrelationID, e.CorrelationID)
	msg.Metadata.Set(MetaCausationID, e.CausationID)
	msg.Metadata.Set(MetaSource, e.Source)
}

// envelopeOf reads the envelope from message metadata.
func envelopeOf(msg *message.Message) (Envelope, error) {
	if reason := msg.Metadata.Get(metaUndecodable); reason != "" {
		return Envelope{}, errors.New(reason)
	}
	md := msg.Metadata
	e := Envelope{
		EventID:       md.Get(MetaEventID),
		EventType:     md.Get(MetaEventType),
		AggregateID:   md.Get(MetaAggregateID),
		AggregateType: md.Get(MetaAggregateType),
		CorrelationID: md.Get(MetaCorrelationID),
		CausationID:   md.Get(MetaCausationID),
		Source:        md.Get(MetaSource),
	}
	if e.EventID == "" || e.EventType == "" {
		return Envelope{}, errors.New("no event envelope in metadata")
	}
	var err error
	if e.OccurredAt, err = time.Parse(time.RFC3339Nano, md.Get(MetaOccurredAt)); err != nil {
		return Envelope{}, fmt.Errorf("envelope %s: %w", MetaOccurredAt, err)
	}
	if e.SchemaVersion, err = strconv.Atoi(md.Get(MetaSchemaVersion)); err != nil {
		return Envelope{}, fmt.Errorf("envelope %s: %w", MetaSchemaVersion, err)
	}
	return e, nil
}

type envelopeKey struct{}
type correlationKey struct{}

// EnvelopeFrom returns the envelope of the event being handled in ctx.
func EnvelopeFrom(ctx context.Context) (Envelope, bool) {
	e, ok := ctx.Value(envelopeKey{}).(Envelope)
	return e, ok
}

// WithCorrelationID makes events published with ctx carry id as their
// correlation id (an HTTP middleware sets it from X-Correlation-ID).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the correlation id carried by ctx, from the event
// being handled or from [WithCorrelationID], or "".
func CorrelationID(ctx context.Context) string {
	if e, ok := EnvelopeFrom(ctx); ok {
		return e.CorrelationID
	}
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}
