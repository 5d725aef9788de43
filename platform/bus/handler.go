package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// handlerName is <context>.<action>: it names the AMQP queue and the Redis
// consumer group, so renaming a handler makes it a new consumer.
var handlerName = regexp.MustCompile(`^[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9_.-]*$`)

// Handler is a named subscription of one function to one topic, ready to be
// registered on a [Bus]. Build it with [NewHandler].
type Handler struct {
	name      string
	topic     string
	broadcast bool
	poison    bool // consumes the poison topic, see NewPoisonHandler
	timeout   time.Duration
	handle    func(*message.Message) error
}

// HandlerOption tunes one handler.
type HandlerOption func(*Handler)

// Broadcast makes every running instance of the application receive every
// event (as cache invalidation needs), instead of the instances sharing the
// events between them. A broadcast handler sees only events published while
// its instance runs.
func Broadcast() HandlerOption { return func(h *Handler) { h.broadcast = true } }

// Timeout bounds each attempt of the handler, overriding bus.handler_timeout.
func Timeout(d time.Duration) HandlerOption { return func(h *Handler) { h.timeout = d } }

// NewHandler subscribes fn, under the stable name, to topic. fn receives the
// decoded payload and its envelope; an error is retried with backoff, then the
// event goes to the poison topic. Return an error wrapped with [Permanent] to
// skip the retries. A payload that cannot be decoded is poisoned at once.
func NewHandler[T any](name string, topic Topic[T], fn func(context.Context, Event[T]) error, opts ...HandlerOption) Handler {
	h := Handler{name: name, topic: topic.Name()}
	for _, opt := range opts {
		opt(&h)
	}
	h.handle = func(msg *message.Message) error {
		if target := msg.Metadata.Get(MetaReplayFor); target != "" && target != name {
			return nil
		}
		e, err := Decode(topic, msg)
		if err != nil {
			return Permanent(err)
		}
		ctx := context.WithValue(msg.Context(), envelopeKey{}, e.Envelope)
		return fn(ctx, e)
	}
	return h
}

// Decode reads an event of topic from msg as a handler of topic receives it.
// It fails when msg has no envelope, is an event of another topic, or its
// payload does not decode into T.
func Decode[T any](topic Topic[T], msg *message.Message) (Event[T], error) {
	env, err := envelopeOf(msg)
	if err != nil {
		return Event[T]{}, fmt.Errorf("undecodable message %s: %w", msg.UUID, err)
	}
	if env.EventType != topic.Name() {
		return Event[T]{}, fmt.Errorf("event %s has type %q, expected %q", env.EventID, env.EventType, topic.Name())
	}
	var payload T
	if err := json.Unmarshal(msg.Payload, &payload); err != nil {
		return Event[T]{}, fmt.Errorf("decode %s payload of event %s: %w", topic.Name(), env.EventID, err)
	}
	return Event[T]{Envelope: env, Payload: payload}, nil
}

// Name is the handler's stable name.
func (h Handler) Name() string { return h.name }

// Topic is the name of the topic the handler consumes.
func (h Handler) Topic() string { return h.topic }

// IsBroadcast reports whether every instance gets every event.
func (h Handler) IsBroadcast() bool { return h.broadcast }

func (h Handler) validate() error {
	if !handlerName.MatchString(h.name) {
		return fmt.Errorf("handler name %q is not <context>.<action> in lower case", h.name)
	}
	if h.handle == nil {
		return fmt.Errorf("handler %q was not built with bus.NewHandler", h.name)
	}
	return nil
}
