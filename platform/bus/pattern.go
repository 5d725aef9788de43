package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
)

// patternSyntax is dot-separated segments, each a lower-case word, `*` (one
// segment) or `#` (zero or more), as AMQP topic-exchange binding keys.
var patternSyntax = regexp.MustCompile(`^([a-z][a-z0-9_]*|\*|#)(\.([a-z][a-z0-9_]*|\*|#))*$`)

// IsPattern reports whether s is a topic pattern rather than a topic name:
// topic names never hold `*` or `#`.
func IsPattern(s string) bool { return strings.ContainsAny(s, "*#") }

// Match reports whether topic matches pattern: `*` matches exactly one
// segment, `#` zero or more, any other segment itself. A topic name matches
// only itself. These are AMQP topic-exchange semantics, which every adapter
// follows.
func Match(pattern, topic string) bool {
	if pattern == "#" {
		return true
	}
	p, rest, more := strings.Cut(pattern, ".")
	if p == "#" {
		// Zero segments, or one and then # again.
		if Match(rest, topic) {
			return true
		}
		_, after, ok := strings.Cut(topic, ".")
		return ok && Match(pattern, after)
	}
	t, after, ok := strings.Cut(topic, ".")
	if p != "*" && p != t {
		return false
	}
	switch {
	case !more:
		return !ok
	case !ok:
		return onlyHashes(rest) // "a.#" matches "a"
	default:
		return Match(rest, after)
	}
}

// onlyHashes reports whether pattern matches zero segments.
func onlyHashes(pattern string) bool {
	for seg := range strings.SplitSeq(pattern, ".") {
		if seg != "#" {
			return false
		}
	}
	return true
}

// RawEvent is an event of any topic, as a pattern handler receives it: its
// envelope and its payload still encoded. [As] decodes it per topic.
type RawEvent struct {
	Envelope
	Payload json.RawMessage
}

// As decodes e when it is an event of topic: ok is false for an event of
// another topic, and err is set (and [Permanent], so the event is poisoned
// if returned) when the payload does not decode into T.
//
//	if u, ok, err := bus.As(e, topics.UserRegistered); ok {
//		if err != nil {
//			return err
//		}
//		... u.Payload.Email ...
//	}
func As[T any](e RawEvent, topic Topic[T]) (ev Event[T], ok bool, err error) {
	if e.EventType != topic.Name() {
		return Event[T]{}, false, nil
	}
	var payload T
	if err := json.Unmarshal(e.Payload, &payload); err != nil {
		return Event[T]{}, true, Permanent(payloadError{topic.Name(), e.EventID, e.SchemaVersion, err})
	}
	return Event[T]{Envelope: e.Envelope, Payload: payload}, true, nil
}

// NewPatternHandler subscribes fn, under the stable name, to every topic
// pattern matches (see [Match]), for the audit logs, caches and bridges
// that must not list topics: `identity.user.*`, `*.*.created`,
// `identity.#`, `#`. It behaves as a [NewHandler] handler in every other
// way: retries, poisoning, options, one queue or consumer group named after
// it. A pattern never matches the poison topic; use [NewPoisonHandler].
//
// On AMQP the handler's queue is bound with the pattern, so it also gets
// topics only other services publish. On Redis Streams it reads the stream
// of each topic this binary declares (with [NewTopic]) that matches, and
// registering it fails when there is none. On gochannel every published
// topic is matched.
func NewPatternHandler(name, pattern string, fn func(context.Context, RawEvent) error, opts ...HandlerOption) Handler {
	h := Handler{name: name, topic: pattern, pattern: true}
	for _, opt := range opts {
		opt(&h)
	}
	if !IsPattern(pattern) || !patternSyntax.MatchString(pattern) {
		h.optErr = fmt.Errorf("handler %q: %q is not a topic pattern: dot-separated lower-case words, `*` (one segment) and `#` (zero or more), with at least one `*` or `#`", name, pattern)
	}
	h.handle = func(_ *slog.Logger, msg *message.Message) error {
		env, err := envelopeOf(msg)
		if err != nil {
			return Permanent(fmt.Errorf("undecodable message %s: %w", msg.UUID, err))
		}
		if !Match(pattern, env.EventType) {
			return Permanent(fmt.Errorf("event %s has type %q, which %s does not match", env.EventID, env.EventType, pattern))
		}
		ctx := context.WithValue(msg.Context(), envelopeKey{}, env)
		return fn(ctx, RawEvent{Envelope: env, Payload: json.RawMessage(msg.Payload)})
	}
	return h
}

// expandPattern lists the declared topics pattern matches, for adapters
// that subscribe per topic.
func expandPattern(pattern string) []string {
	var out []string
	for _, t := range Topics() {
		if Match(pattern, t.Name) {
			out = append(out, t.Name)
		}
	}
	return out
}

// topicFanIn subscribes a pattern handler on an adapter that reads per
// topic: one subscriber per matched topic, merged into one channel that
// holds at most n messages unacked, the handler's concurrency whatever the
// number of topics.
type topicFanIn struct {
	subs map[string]message.Subscriber
	n    int
}

func (f topicFanIn) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	ins := make([]<-chan *message.Message, 0, len(f.subs))
	for topic, s := range f.subs {
		// On an error the caller cancels ctx, which ends the subscriptions
		// already made and their forwarders.
		in, err := s.Subscribe(ctx, topic)
		if err != nil {
			return nil, err
		}
		ins = append(ins, in)
	}
	return merge(ctx, ins, max(f.n, 1)), nil
}

func (f topicFanIn) Close() error {
	errs := make([]error, 0, len(f.subs))
	for _, s := range f.subs {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// eventTopic is the topic msg was published on, for a handler subscribed
// to topic: the topic itself, or for a pattern the event's type.
func eventTopic(topic string, msg *message.Message) string {
	if IsPattern(topic) {
		if t := msg.Metadata.Get(MetaEventType); t != "" {
			return t
		}
	}
	return topic
}
