package bus

import (
	"cmp"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// TopicInfo describes a topic declared with [NewTopic], for tools that
// document the application (the event catalog) rather than run it.
type TopicInfo struct {
	Name    string
	Version int
	// Payload is the Go type events of the topic carry.
	Payload reflect.Type
}

// Context is the bounded context that owns and publishes the topic.
func (t TopicInfo) Context() string { return contextOf(t.Name) }

// Aggregate is the aggregate type the topic's events are about.
func (t TopicInfo) Aggregate() string { return aggregateOf(t.Name) }

// Envelope is the part of the envelope every event of the topic shares:
// event type, aggregate type, schema version and source.
func (t TopicInfo) Envelope() Envelope {
	return Envelope{EventType: t.Name, AggregateType: t.Aggregate(), SchemaVersion: t.Version, Source: t.Context()}
}

// Metadata is e as the message metadata an event carries it in.
func (e Envelope) Metadata() message.Metadata {
	msg := message.NewMessage("", nil)
	e.setOn(msg)
	return msg.Metadata
}

func contextOf(topic string) string { return strings.SplitN(topic, ".", 2)[0] }

func aggregateOf(topic string) string { return strings.Split(topic, ".")[1] }

// declared holds every topic NewTopic was called for. Topics are package
// variables, so by the time main runs it holds all the program links in.
var declared struct {
	sync.Mutex
	topics map[TopicInfo]struct{}
}

func declare(t TopicInfo) {
	declared.Lock()
	defer declared.Unlock()
	if declared.topics == nil {
		declared.topics = map[TopicInfo]struct{}{}
	}
	declared.topics[t] = struct{}{}
}

// Topics lists every topic declared in this program, by name then version.
// A topic declared twice alike is listed once; declared with another
// version or payload, it is listed once per declaration.
func Topics() []TopicInfo {
	declared.Lock()
	defer declared.Unlock()
	ts := make([]TopicInfo, 0, len(declared.topics))
	for t := range declared.topics {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b TopicInfo) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Payload.String(), b.Payload.String()))
	})
	return ts
}

// Timeout is the handler's own bound on each attempt ([Timeout]), or 0 when
// it runs under bus.handler_timeout.
func (h Handler) Timeout() time.Duration { return h.timeout }

// ConsumesPoison reports whether the handler was built with
// [NewPoisonHandler]: it consumes bus.poison_topic, whatever [Handler.Topic]
// says before registration.
func (h Handler) ConsumesPoison() bool { return h.poison }
