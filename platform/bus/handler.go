package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/example/monolith/platform/internal/compatjson"
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
	pattern   bool // topic is a pattern, see NewPatternHandler
	timeout   time.Duration
	// concurrency is 0 until set by the option, and the value in effect
	// once registered.
	concurrency      int
	ordered          bool
	rescheduleBeyond time.Duration                              // 0: bus.retry.reschedule_beyond
	optErr           error                                      // an invalid option, reported by Register
	handle           func(*slog.Logger, *message.Message) error // the bus passes its logger
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

// Concurrency lets the handler handle up to n events at once in each
// instance, overriding bus.concurrency; bus.handlers.<name>.concurrency in
// the configuration overrides it in turn. Events of one aggregate stay in
// order only on gochannel: see docs/bus.md and [Ordered].
func Concurrency(n int) HandlerOption {
	return func(h *Handler) {
		h.concurrency = n
		if n < 1 {
			h.optErr = fmt.Errorf("handler %q: Concurrency(%d): must be >= 1", h.name, n)
		}
	}
}

// Ordered makes the handler handle its events one at a time, in the order
// its queue holds them, across every instance: on AMQP one consumer of the
// handler's queue is active at a time (RabbitMQ's single active consumer);
// on gochannel events are handled in publish order. Redis Streams cannot
// promise it for a consumer group, so registering an ordered handler that is
// not broadcast fails there. It excludes a concurrency above 1.
func Ordered() HandlerOption { return func(h *Handler) { h.ordered = true } }

// RescheduleBeyond makes the handler reschedule a retry whose backoff is
// longer than d instead of waiting in its consumer, overriding
// bus.retry.reschedule_beyond: the event is acked, and a copy stored to be
// delivered again after that backoff, so the events behind it keep
// flowing. See [RetryAfter].
func RescheduleBeyond(d time.Duration) HandlerOption {
	return func(h *Handler) {
		h.rescheduleBeyond = d
		if d <= 0 {
			h.optErr = fmt.Errorf("handler %q: RescheduleBeyond(%s): must be > 0", h.name, d)
		}
	}
}

// NewHandler subscribes fn, under the stable name, to topic. fn receives the
// decoded payload and its envelope; an error is retried with backoff, then the
// event goes to the poison topic. Return an error wrapped with [Permanent] to
// skip the retries. A payload that cannot be decoded is poisoned at once.
//
// The event's schema version is checked against the topic's: an event of a
// newer version is handled (fields fn does not know are ignored) and logged
// at warn level once per version; an event of an older version whose payload
// no longer decodes into T is poisoned with a reason saying so.
func NewHandler[T any](name string, topic Topic[T], fn func(context.Context, Event[T]) error, opts ...HandlerOption) Handler {
	h := Handler{name: name, topic: topic.Name()}
	for _, opt := range opts {
		opt(&h)
	}
	var warned sync.Map // newer schema versions already logged
	h.handle = func(logger *slog.Logger, msg *message.Message) error {
		e, err := Decode(topic, msg)
		var undecodable payloadError
		// Versions below 1 are never published (NewTopic rejects them), so
		// they say nothing about the payload's age.
		if errors.As(err, &undecodable) && undecodable.version >= 1 && undecodable.version < topic.Version() {
			// Said plainly, since the fix is in the topic's declaration: an
			// incompatible change needed a new topic, not a new version.
			return Permanent(fmt.Errorf("event %s of %s has schema version %d, older than version %d handler %s decodes, and does not decode: %w",
				undecodable.eventID, topic.Name(), undecodable.version, topic.Version(), name, undecodable.err))
		}
		if err != nil {
			return Permanent(err)
		}
		if e.SchemaVersion > topic.Version() {
			// Expected while publishers are upgraded before consumers; once
			// per version is enough to notice a consumer left behind.
			if _, seen := warned.LoadOrStore(e.SchemaVersion, true); !seen {
				logger.WarnContext(msg.Context(), "Event has a newer schema version than its handler; unknown fields are ignored",
					"handler", name,
					"topic", topic.Name(),
					"event_version", e.SchemaVersion,
					"handler_version", topic.Version(),
					"event_id", e.EventID)
			}
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
	if err := compatjson.Unmarshal(msg.Payload, &payload); err != nil {
		return Event[T]{}, payloadError{topic.Name(), env.EventID, env.SchemaVersion, err}
	}
	return Event[T]{Envelope: env, Payload: payload}, nil
}

// payloadError is an event whose payload does not decode into the topic's
// type; it keeps the event's schema version for the handler to explain why.
type payloadError struct {
	topic   string
	eventID string
	version int
	err     error
}

func (e payloadError) Error() string {
	return fmt.Sprintf("decode %s payload of event %s: %v", e.topic, e.eventID, e.err)
}

func (e payloadError) Unwrap() error { return e.err }

// Name is the handler's stable name.
func (h Handler) Name() string { return h.name }

// Topic is the name of the topic the handler consumes, or its pattern.
func (h Handler) Topic() string { return h.topic }

// IsPattern reports whether the handler was built with [NewPatternHandler].
func (h Handler) IsPattern() bool { return h.pattern }

// Consumes reports whether the handler gets the events of topic: its own
// topic, or one its pattern matches (the bus never delivers the poison
// topic to a pattern handler, though a pattern may match its name).
func (h Handler) Consumes(topic string) bool {
	if h.pattern {
		return Match(h.topic, topic)
	}
	return h.topic == topic
}

// skips reports whether h does not run msg, which its subscription
// delivered: a replay addressed to another handler of the topic (poison
// handlers take every message of the poison topic), or, for a pattern
// handler, a copy on its way to the poison topic, which the pattern's
// routing delivers too when it matches the poison topic's name, or an
// event of a topic the pattern does not match, which a subscription wider
// than the pattern delivers (NATS reads the whole stream for a pattern
// with #).
func (h Handler) skips(msg *message.Message) bool {
	if target := msg.Metadata.Get(MetaReplayFor); target != "" && target != h.name && !h.poison {
		return true
	}
	if !h.pattern {
		return false
	}
	t := msg.Metadata.Get(MetaEventType)
	return msg.Metadata.Get(middleware.ReasonForPoisonedKey) != "" || (t != "" && !Match(h.topic, t))
}

// IsBroadcast reports whether every instance gets every event.
func (h Handler) IsBroadcast() bool { return h.broadcast }

// IsOrdered reports whether the handler was built with [Ordered].
func (h Handler) IsOrdered() bool { return h.ordered }

// Concurrency is how many events the handler handles at once per instance:
// as set with the [Concurrency] option (0 if not), or, for the handlers
// [Bus.Handlers] lists, the value in effect after the configuration.
func (h Handler) Concurrency() int { return h.concurrency }

func (h Handler) validate() error {
	if !handlerName.MatchString(h.name) {
		return fmt.Errorf("handler name %q is not <context>.<action> in lower case", h.name)
	}
	if h.handle == nil {
		return fmt.Errorf("handler %q was not built with bus.NewHandler", h.name)
	}
	return h.optErr
}
