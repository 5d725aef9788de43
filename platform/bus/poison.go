package bus

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// PoisonedMessage is a message a handler gave up on, as published on the
// poison topic: the original payload and metadata plus why it failed.
type PoisonedMessage struct {
	ID       string // the message UUID: the event id for events
	Topic    string // the topic it was consumed from
	Handler  string // the handler that gave up
	Reason   string // the last error
	Attempts int    // handler runs in the delivery that gave up
	Payload  []byte
	Metadata map[string]string
}

// NewPoisonHandler consumes the bus's poison topic (bus.poison_topic). Its
// failures are retried and then redelivered, never poisoned again, so
// nothing that reached the poison topic is lost.
func NewPoisonHandler(name string, fn func(context.Context, PoisonedMessage) error) Handler {
	return Handler{name: name, poison: true, handle: func(_ *slog.Logger, msg *message.Message) error {
		if err := fn(msg.Context(), DecodePoisoned(msg)); err != nil {
			return poisonHandlerError{fmt.Errorf("poison handler %s: %w", name, err)}
		}
		return nil
	}}
}

// DecodePoisoned reads a message of the poison topic as a poison handler
// receives it.
func DecodePoisoned(msg *message.Message) PoisonedMessage {
	md := maps.Clone(msg.Metadata)
	attempts, _ := strconv.Atoi(md.Get(MetaAttempts))
	p := PoisonedMessage{
		ID:       msg.UUID,
		Topic:    md.Get(middleware.PoisonedTopicKey),
		Handler:  md.Get(middleware.PoisonedHandlerKey),
		Reason:   md.Get(middleware.ReasonForPoisonedKey),
		Attempts: attempts,
		Payload:  msg.Payload,
		Metadata: md,
	}
	if queue := md.Get("x-first-death-queue"); p.Handler == "" && queue != "" {
		// Dead-lettered by RabbitMQ, not by the bus: a quorum queue's
		// bus.amqp.delivery_limit. The queue is the handler's.
		p.Handler, p.Topic = queue, md.Get(MetaEventType)
		p.Reason = fmt.Sprintf("RabbitMQ dead-lettered it from queue %s (%s): delivered bus.amqp.delivery_limit times without an ack, as when its handler crashes the process",
			queue, md.Get("x-first-death-reason"))
	}
	return p
}

// poisonHandlerError keeps a poison handler's failure out of the poison topic.
type poisonHandlerError struct{ error }

func (e poisonHandlerError) Unwrap() error { return e.error }
