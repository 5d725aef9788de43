package catalog

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/invopop/jsonschema"

	"github.com/example/monolith/platform/bus"
)

// reflector generates self-contained schemas: no $defs to reference, so a
// schema can sit anywhere in an AsyncAPI document; no $id or $schema; and
// additional properties allowed, as consumers ignore fields they do not
// know.
var reflector = jsonschema.Reflector{
	DoNotReference: true, ExpandedStruct: true, Anonymous: true, AllowAdditionalProperties: true,
}

// payloadSchema is the JSON Schema of t as encoding/json writes it, as
// generic JSON values so that it compares with one read back from a file.
func payloadSchema(t reflect.Type) (map[string]any, error) {
	s := reflector.ReflectFromType(t)
	s.Version = ""
	return toJSONValue(s)
}

func toJSONValue(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// header documents one metadata key.
type header struct{ description, format string }

// envelopeHeaders documents the envelope's metadata keys; a test checks
// that every key the bus sets is here.
var envelopeHeaders = map[string]header{
	bus.MetaEventID:       {"UUIDv7, also the Watermill message UUID.", "uuid"},
	bus.MetaEventType:     {"The topic name.", ""},
	bus.MetaOccurredAt:    {"When the event happened: RFC 3339 with nanoseconds, UTC.", "date-time"},
	bus.MetaAggregateID:   {"The id of the aggregate the event is about.", ""},
	bus.MetaAggregateType: {"The aggregate type: second segment of the topic name.", ""},
	bus.MetaSchemaVersion: {"The payload's schema version.", ""},
	bus.MetaCorrelationID: {"Shared by every event one request caused.", ""},
	bus.MetaCausationID:   {"Id of the event being handled when this one was published; empty otherwise.", ""},
	bus.MetaSource:        {"The context that published the event: the topic's owner.", ""},
}

// replayFor is the one metadata key only some events carry.
var replayFor = header{"Only on an event replayed from the poison store or the event history, or rescheduled by a handler that asked to retry later: the one handler to run it; the topic's other handlers ack it unrun.", ""}

// attemptsMade documents the attempt count a rescheduled event carries.
var attemptsMade = header{"Only on an event a handler rescheduled (bus.RetryAfter): how many times that handler ran it before; its attempts count on from there.", ""}

// traceHeaders document the W3C trace context events carry when the
// publisher was in a trace: optional, like replay_for.
var traceHeaders = map[string]header{
	bus.MetaTraceparent: {"W3C trace context (version-traceid-spanid-flags) of the span that published the event; the handler's span is its child. Absent when the publisher was not in a trace. See docs/observability.md.", ""},
	bus.MetaTracestate:  {"W3C tracestate vendor entries, passed on with traceparent when the caller sent some.", ""},
}

// poisonHeaders documents what the poison queue adds to a message it takes.
var poisonHeaders = map[string]header{
	middleware.ReasonForPoisonedKey:  {"The handler's last error.", ""},
	middleware.PoisonedTopicKey:      {"The topic the message was consumed from.", ""},
	middleware.PoisonedHandlerKey:    {"The handler that gave up.", ""},
	middleware.PoisonedSubscriberKey: {"The subscriber the message came through.", ""},
	bus.MetaAttempts:                 {"How many times the handler ran the event, in the delivery that gave up and the earlier ones it rescheduled.", ""},
}

// headersSchema is the JSON Schema of the metadata every event of t
// carries: every key the bus sets is required, and the keys whose value
// the topic fixes (type, aggregate type, version, source) are constants.
func headersSchema(t bus.TopicInfo) map[string]any {
	zero, fixed := bus.Envelope{}.Metadata(), t.Envelope().Metadata()
	props := optionalHeaders()
	for key, v := range zero {
		var constant string
		if fixed[key] != v {
			constant = fixed[key]
		}
		props[key] = stringSchema(envelopeHeaders[key], constant)
	}
	return objectSchema(props, slices.Sorted(maps.Keys(zero)))
}

// poisonHeadersSchema is the JSON Schema of a poisoned message's metadata:
// the poison queue's keys, and the original event's envelope when it had
// one.
func poisonHeadersSchema() map[string]any {
	props := optionalHeaders()
	for key, h := range envelopeHeaders {
		props[key] = stringSchema(h, "")
	}
	for key, h := range poisonHeaders {
		props[key] = stringSchema(h, "")
	}
	return objectSchema(props, slices.Sorted(maps.Keys(poisonHeaders)))
}

// optionalHeaders are the properties of the keys only some messages carry.
func optionalHeaders() map[string]any {
	props := map[string]any{
		bus.MetaReplayFor:    stringSchema(replayFor, ""),
		bus.MetaAttemptsMade: stringSchema(attemptsMade, ""),
	}
	for key, h := range traceHeaders {
		props[key] = stringSchema(h, "")
	}
	return props
}

// stringSchema is a metadata value: metadata values are strings.
func stringSchema(h header, constant string) map[string]any {
	s := map[string]any{"type": "string", "description": h.description}
	if h.format != "" {
		s["format"] = h.format
	}
	if constant != "" {
		s["const"] = constant
	}
	return s
}

func objectSchema(props map[string]any, required []string) map[string]any {
	return map[string]any{"type": "object", "properties": props, "required": anySlice(required)}
}

// anySlice is ss as JSON decoding yields it, so that generated and
// read-back schemas compare alike.
func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
