package console

import (
	"encoding/json"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/example/monolith/platform/bus"
)

const (
	// subscriberBuffer is how many events one live stream may have waiting
	// before the tail drops what comes next for it.
	subscriberBuffer = 256
	// maxSubscribers bounds the live streams open at once.
	maxSubscribers = 32
	// maxPayload is how much of a payload a row carries.
	maxPayload = 64 << 10
)

// Tail fans out every delivery the bus's handlers finish to the live
// streams open at the time, each through a bounded buffer: a stream that
// falls behind loses events (and is told how many), the handler never
// waits. With no stream open, observing costs one atomic load.
type Tail struct {
	open atomic.Int64
	seq  atomic.Uint64

	mu   sync.RWMutex
	subs map[*subscriber]struct{}
}

// NewTail returns a tail with no stream open.
func NewTail() *Tail { return &Tail{subs: map[*subscriber]struct{}{}} }

// subscriber is one live stream: its filter, its buffer of encoded rows
// and how many rows it lost since it was last told.
type subscriber struct {
	filter  Filter
	rows    chan []byte
	dropped atomic.Int64
}

// Filter selects rows; an empty field matches everything.
type Filter struct {
	Topic string
	// Context matches the handler's context or the topic's (its
	// publisher's).
	Context       string
	Handler       string
	CorrelationID string
}

func (f Filter) match(r *row) bool {
	return (f.Topic == "" || f.Topic == r.Topic) &&
		(f.Handler == "" || f.Handler == r.Handler) &&
		(f.Context == "" || f.Context == r.Context || f.Context == contextOf(r.Topic)) &&
		(f.CorrelationID == "" || r.Envelope != nil && f.CorrelationID == r.Envelope.CorrelationID)
}

// subscribe opens a stream; false when maxSubscribers are open.
func (t *Tail) subscribe(f Filter) (*subscriber, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.subs) >= maxSubscribers {
		return nil, false
	}
	s := &subscriber{filter: f, rows: make(chan []byte, subscriberBuffer)}
	t.subs[s] = struct{}{}
	t.open.Store(int64(len(t.subs)))
	return s, true
}

func (t *Tail) unsubscribe(s *subscriber) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.subs, s)
	t.open.Store(int64(len(t.subs)))
}

// ObserveHandled offers the delivery to the open streams.
func (t *Tail) ObserveHandled(h bus.Handled) {
	if t.open.Load() == 0 {
		return
	}
	t.offer(handledRow(t.seq.Add(1), h))
}

// ObservePublished offers the published message to the open streams: an
// event nobody handles shows there only.
func (t *Tail) ObservePublished(p bus.Published) {
	if t.open.Load() == 0 {
		return
	}
	t.offer(publishedRow(t.seq.Add(1), p))
}

// offer encodes r once, if a stream's filter matches it, and hands it to
// every such stream, never waiting.
func (t *Tail) offer(r *row) {
	var data []byte
	t.mu.RLock()
	defer t.mu.RUnlock()
	for s := range t.subs {
		if !s.filter.match(r) {
			continue
		}
		if data == nil {
			var err error
			if data, err = json.Marshal(r); err != nil {
				return // every field is a plain value: this does not happen
			}
		}
		select {
		case s.rows <- data:
		default:
			s.dropped.Add(1)
		}
	}
}

// resultPublished is the Result of a row that reports a publish.
const resultPublished = "published"

// row is one finished delivery, or one published message, as the live view
// shows it.
type row struct {
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
	// Handler is empty for a published message.
	Handler string `json:"handler"`
	// Context is the handler's, or for a published message the topic's.
	Context string `json:"context"`
	Topic   string `json:"topic"`
	// Result is a bus.Result, or "published".
	Result     string  `json:"result"`
	Error      string  `json:"error,omitempty"`
	Attempts   int     `json:"attempts"`
	DurationMS float64 `json:"duration_ms"`
	MessageID  string  `json:"message_id"`
	// Envelope is nil for a message that is not an event.
	Envelope    *envelope         `json:"envelope,omitempty"`
	TraceParent string            `json:"traceparent,omitempty"`
	TraceID     string            `json:"trace_id,omitempty"`
	Metadata    map[string]string `json:"metadata"`
	// Payload is the payload when it is JSON, PayloadText otherwise (or
	// when it was cut at maxPayload bytes: Truncated).
	Payload     json.RawMessage `json:"payload,omitempty"`
	PayloadText string          `json:"payload_text,omitempty"`
	PayloadSize int             `json:"payload_size"`
	Truncated   bool            `json:"truncated,omitempty"`
}

// envelope is bus.Envelope with JSON names.
type envelope struct {
	EventID       string    `json:"event_id"`
	EventType     string    `json:"event_type"`
	OccurredAt    time.Time `json:"occurred_at"`
	AggregateID   string    `json:"aggregate_id"`
	AggregateType string    `json:"aggregate_type"`
	SchemaVersion int       `json:"schema_version"`
	CorrelationID string    `json:"correlation_id"`
	CausationID   string    `json:"causation_id"`
	Source        string    `json:"source"`
}

// handledRow copies what it keeps of h: h's metadata and payload are the
// message's own.
func handledRow(seq uint64, h bus.Handled) *row {
	r := &row{
		Seq: seq, At: time.Now().UTC(), Handler: h.Handler, Context: contextOf(h.Handler), Topic: h.Topic,
		Result: string(h.Result), Attempts: h.Attempts, DurationMS: float64(h.Duration.Microseconds()) / 1000,
		MessageID: h.MessageID, TraceParent: h.TraceParent, TraceID: traceID(h.TraceParent),
	}
	if h.Err != nil {
		r.Error = h.Err.Error()
	}
	env, err := h.Envelope()
	r.setMessage(env, err, h.Metadata, h.Payload)
	return r
}

// publishedRow copies what it keeps of p.
func publishedRow(seq uint64, p bus.Published) *row {
	r := &row{
		Seq: seq, At: time.Now().UTC(), Context: contextOf(p.Topic), Topic: p.Topic, Result: resultPublished,
		DurationMS: float64(p.Duration.Microseconds()) / 1000,
		MessageID:  p.MessageID, TraceParent: p.TraceParent, TraceID: traceID(p.TraceParent),
	}
	env, err := p.Envelope()
	r.setMessage(env, err, p.Metadata, p.Payload)
	return r
}

// setMessage copies the message's envelope (unless envErr says it has
// none), metadata and payload into r.
func (r *row) setMessage(e bus.Envelope, envErr error, md map[string]string, p []byte) {
	r.Metadata, r.PayloadSize = maps.Clone(md), len(p)
	if envErr == nil {
		r.Envelope = &envelope{
			EventID: e.EventID, EventType: e.EventType, OccurredAt: e.OccurredAt, AggregateID: e.AggregateID,
			AggregateType: e.AggregateType, SchemaVersion: e.SchemaVersion, CorrelationID: e.CorrelationID,
			CausationID: e.CausationID, Source: e.Source,
		}
	}
	switch {
	case len(p) > maxPayload:
		r.PayloadText, r.Truncated = strings.ToValidUTF8(string(p[:maxPayload]), "\uFFFD"), true
	case json.Valid(p):
		r.Payload = append(json.RawMessage(nil), p...)
	case utf8.Valid(p):
		r.PayloadText = string(p)
	default:
		r.PayloadText = strings.ToValidUTF8(string(p), "\uFFFD")
	}
}

// contextOf is the first segment of a handler's or a topic's name.
func contextOf(name string) string {
	c, _, _ := strings.Cut(name, ".")
	return c
}

// traceID is the trace id of a W3C traceparent
// (version-traceid-parentid-flags), or "" when it is not one.
func traceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) < 4 || len(parts[1]) != 32 || strings.Trim(parts[1], "0123456789abcdef") != "" || strings.Trim(parts[1], "0") == "" {
		return ""
	}
	return parts[1]
}
