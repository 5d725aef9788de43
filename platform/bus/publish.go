package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// Publisher sends encoded events. [*Bus] sends them to the broker; a
// transactional outbox would send them into a database transaction.
type Publisher interface {
	Publish(topic string, messages ...*message.Message) error
}

// Publish sends payload as an event of topic about the aggregate aggregateID.
// Published from inside a handler, the event inherits the handled event's
// correlation id and takes its id as causation id.
func Publish[T any](ctx context.Context, p Publisher, topic Topic[T], aggregateID string, payload T) error {
	msg, err := NewMessage(ctx, topic, aggregateID, payload)
	if err != nil {
		return err
	}
	if err := p.Publish(topic.Name(), msg); err != nil {
		return fmt.Errorf("publish %s: %w", topic.Name(), err)
	}
	return nil
}

// Item is one event of a batch: the aggregate it is about and its payload.
type Item[T any] struct {
	AggregateID string
	Payload     T
}

// PublishBatch sends items as events of topic, in order, in one call to p,
// each with its own envelope as [Publish] gives it. Through
// outbox.Publisher(tx) that is one INSERT in the caller's transaction, so
// the batch commits or rolls back with it. Through the [*Bus] the events go
// out pipelined ([Bus.PublishBatch]: one confirm wait on AMQP, XADD
// pipelines on Redis); a broker failure there leaves the confirmed prefix
// published, and the error says how many were. Any other p gets one
// Publish call with every message.
func PublishBatch[T any](ctx context.Context, p Publisher, topic Topic[T], items []Item[T]) error {
	if len(items) == 0 {
		return nil
	}
	msgs := make([]*message.Message, len(items))
	for i, it := range items {
		msg, err := NewMessage(ctx, topic, it.AggregateID, it.Payload)
		if err != nil {
			return fmt.Errorf("publish batch of %s: item %d: %w", topic.Name(), i, err)
		}
		msgs[i] = msg
	}
	if bp, ok := p.(BatchPublisher); ok {
		batch := make([]TopicMessage, len(msgs))
		for i, msg := range msgs {
			batch[i] = TopicMessage{Topic: topic.Name(), Message: msg}
		}
		if n, err := bp.PublishBatch(ctx, batch); err != nil {
			return fmt.Errorf("publish batch of %s: %d of %d events confirmed: %w", topic.Name(), n, len(msgs), err)
		}
		return nil
	}
	if err := p.Publish(topic.Name(), msgs...); err != nil {
		return fmt.Errorf("publish batch of %s: %w", topic.Name(), err)
	}
	return nil
}

// NewMessage encodes payload and its envelope into a Watermill message, as
// [Publish] does, for code that must hand messages to Watermill itself.
func NewMessage[T any](ctx context.Context, topic Topic[T], aggregateID string, payload T) (*message.Message, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", topic.Name(), err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("event id: %w", err)
	}
	env := topic.Info().Envelope()
	env.EventID, env.OccurredAt, env.AggregateID = id.String(), time.Now().UTC(), aggregateID
	if parent, ok := EnvelopeFrom(ctx); ok {
		env.CorrelationID, env.CausationID = parent.CorrelationID, parent.EventID
	} else if env.CorrelationID = CorrelationID(ctx); env.CorrelationID == "" {
		env.CorrelationID = env.EventID
	}
	msg := message.NewMessage(env.EventID, body)
	env.setOn(msg)
	// The publishing span (the request's, the handler attempt's) is the
	// parent of the spans that carry the message on; publishers that make
	// spans of their own (the outbox, the bus) write theirs over it.
	InjectTrace(ctx, msg.Metadata)
	// The message context carries the handler name (when publishing from a
	// handler) to the publish metrics.
	msg.SetContext(ctx)
	return msg, nil
}
