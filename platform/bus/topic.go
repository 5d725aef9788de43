package bus

import (
	"fmt"
	"reflect"
	"regexp"
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

// NewTopic declares a topic, listed from then on by [Topics]. It panics when
// name does not follow <context>.<aggregate>.<verb> or version < 1: topics
// are declared in package variables, so a bad declaration stops every test
// and binary at once.
func NewTopic[T any](name string, version int) Topic[T] {
	if !topicName.MatchString(name) {
		panic(fmt.Sprintf("bus: topic %q is not <context>.<aggregate>.<verb> in lower case", name))
	}
	if version < 1 {
		panic(fmt.Sprintf("bus: topic %q: schema version must be >= 1", name))
	}
	t := Topic[T]{name: name, version: version}
	declare(t.Info())
	return t
}

// Name is the topic name, also the event type in the envelope.
func (t Topic[T]) Name() string { return t.name }

// Version is the schema version of the payload.
func (t Topic[T]) Version() int { return t.version }

// Context is the bounded context that owns and publishes the topic.
func (t Topic[T]) Context() string { return contextOf(t.name) }

// Aggregate is the aggregate type the topic's events are about.
func (t Topic[T]) Aggregate() string { return aggregateOf(t.name) }

// Info describes the topic without its type parameter.
func (t Topic[T]) Info() TopicInfo {
	return TopicInfo{Name: t.name, Version: t.version, Payload: reflect.TypeFor[T]()}
}
