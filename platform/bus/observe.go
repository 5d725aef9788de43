package bus

import (
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"go.uber.org/fx"
)

// Result is how a delivery to a handler ended, as an [Observer] sees it.
type Result string

// Results of a delivery.
const (
	// ResultOK: the handler succeeded, at its first attempt or after
	// retries; the message is acked.
	ResultOK Result = "ok"
	// ResultPoisoned: the handler gave up (retries exhausted, or a
	// permanent error) and the message went to the poison topic; it is
	// acked.
	ResultPoisoned Result = "poisoned"
	// ResultError: the delivery failed and the message is not acked, so it
	// is delivered again: cut short by shutdown, a poison handler's
	// failure, or a poison topic that could not be published to.
	ResultError Result = "error"
	// ResultRescheduled: the handler asked to run the event later
	// ([RetryAfter]); the message is acked and a copy is stored, due
	// then.
	ResultRescheduled Result = "rescheduled"
)

// Handled is one delivery a handler finished, as an [Observer] sees it.
type Handled struct {
	// Handler is the handler's name, Topic the topic of the message (for a
	// pattern handler, the one its pattern matched).
	Handler string
	Topic   string
	// MessageID is the message's UUID: the event id for events.
	MessageID string
	// Metadata and Payload are the message's own, valid only during
	// ObserveHandled: copy what is kept, and change nothing.
	Metadata message.Metadata
	Payload  []byte
	Result   Result
	// Err is why the delivery failed (the poison reason when poisoned);
	// nil when Result is ResultOK.
	Err error
	// Attempts is how many times the handler ran in this delivery, retries
	// included.
	Attempts int
	// Duration is the whole delivery's, retries and their backoff included.
	Duration time.Duration
	// TraceParent is the W3C traceparent the message carries in its
	// metadata, if any.
	TraceParent string
}

// Envelope is the delivered event's envelope; it fails for a message that
// is not an event (an undecodable one, or a replay of garbage).
func (h Handled) Envelope() (Envelope, error) {
	return envelopeOf(&message.Message{UUID: h.MessageID, Metadata: h.Metadata})
}

// Observer is told about every delivery every handler of the bus finished,
// as in a live tail of what the application handles. ObserveHandled runs
// on the handler's goroutine before the message is acked: it must return
// at once and never block (hand the event to a buffer that drops when
// full, not to an unbuffered channel).
type Observer interface {
	ObserveHandled(Handled)
}

// Published is one message the bus published, as a [PublishObserver]
// sees it: an event published directly or forwarded from an outbox, a
// replay, or a message sent to the poison topic.
type Published struct {
	Topic     string
	MessageID string
	// Metadata and Payload are the message's own, valid only during
	// ObservePublished: copy what is kept, and change nothing.
	Metadata message.Metadata
	Payload  []byte
	// Duration is how long publishing took, retries included.
	Duration time.Duration
	// TraceParent is the W3C traceparent the message carries, if any.
	TraceParent string
}

// Envelope is the published event's envelope; it fails for a message that
// is not an event.
func (p Published) Envelope() (Envelope, error) {
	return envelopeOf(&message.Message{UUID: p.MessageID, Metadata: p.Metadata})
}

// PublishObserver is an [Observer] that is also told about every message
// the bus published, after the broker took it, under the same rules as
// ObserveHandled: return at once, never block.
type PublishObserver interface {
	Observer
	ObservePublished(Published)
}

// AsObserver annotates a constructor returning an [Observer] so that the
// application's bus reports to it ([Options.Observers]).
func AsObserver(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"bus.observers"`))
}

// observe reports each delivery to h, outermost in h's chain so that it
// sees how the delivery ended: acked, poisoned or left for redelivery.
func observe(h Handler, observers []Observer) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if h.skips(msg) {
				return next(msg) // h does not run it: nothing to tell
			}
			// Messages of the poison topic arrive with a reason already.
			reasonBefore := msg.Metadata.Get(middleware.ReasonForPoisonedKey)
			start := time.Now()
			out, err := next(msg)
			e := Handled{
				Handler: h.name, Topic: eventTopic(h.topic, msg), MessageID: msg.UUID,
				Metadata: msg.Metadata, Payload: msg.Payload,
				Result: ResultOK, Err: err, Duration: time.Since(start),
				TraceParent: msg.Metadata.Get("traceparent"),
			}
			if runs, ok := msg.Context().Value(attemptsKey{}).(*int); ok {
				e.Attempts = *runs
			}
			switch reason := msg.Metadata.Get(middleware.ReasonForPoisonedKey); {
			case err != nil:
				e.Result = ResultError
			case msg.Metadata.Get(metaRescheduledTo) != "":
				e.Result = ResultRescheduled
			case reason != "" && reason != reasonBefore:
				e.Result, e.Err = ResultPoisoned, errors.New(reason)
			}
			for _, o := range observers {
				o.ObserveHandled(e)
			}
			return out, err
		}
	}
}

// observingPublisher tells the publish observers about every message p
// published.
type observingPublisher struct {
	message.Publisher
	observers []PublishObserver
}

func (p observingPublisher) Publish(topic string, msgs ...*message.Message) error {
	start := time.Now()
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	took := time.Since(start)
	for _, msg := range msgs {
		e := Published{Topic: topic, MessageID: msg.UUID, Metadata: msg.Metadata, Payload: msg.Payload,
			Duration: took, TraceParent: msg.Metadata.Get("traceparent")}
		for _, o := range p.observers {
			o.ObservePublished(e)
		}
	}
	return nil
}

// publishObservers are the observers that also observe publishing.
func publishObservers(observers []Observer) []PublishObserver {
	var out []PublishObserver
	for _, o := range observers {
		if po, ok := o.(PublishObserver); ok {
			out = append(out, po)
		}
	}
	return out
}
