package bus

import (
	"fmt"
	"regexp"
	"strings"
)

// topicName is <context>.<aggregate>.<past-tense-verb>, lower case.
var topicName = regexp.MustCompile(`^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$`)

// Topic binds an event name to its payload type and schema version. Declare
// each one once, in platform/topics, as a package-level variable: a misspelt
// topic or a payload of the wrong type then fails to compile.
type Topic[T any] struct {
	name    string
	version int
}

// NewTopic declares a topic. It panics when name does not follow
// <context>.<aggregate>.<verb> or version < 1: topics are declared in package
// variables, so a bad declaration stops every test and binary at once.
func NewTopic[T any](name string, version int) Topic[T] {
	if !topicName.MatchString(name) {
		panic(fmt.Sprintf("bus: topic %q is not <context>.<aggregate>.<verb> in lower case", name))
	}
	if version < 1 {
		panic(fmt.Sprintf("bus: topic %q: schema version must be >= 1", name))
	}
	return Topic[T]{name: name, version: version}
}

// Name is the topic name, also the event type in the envelope.
func (t Topic[T]) Name() string { return t.name }

// Version is the schema version of the payload.
func (t Topic[T]) Version() int { return t.version }

// Context is the bounded context that owns and publishes the topic.
func (t Topic[T]) Context() string { return strings.SplitN(t.name, ".", 2)[0] }

// Aggregate is the aggregate type the topic's events are about.
func (t Topic[T]) Aggregate() string { return strings.Split(t.name, ".")[1] }
