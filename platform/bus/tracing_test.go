package bus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/testenv"
)

var (
	traced      = bus.NewTopic[greeting]("test.greeting.traced", 1)
	tracedReply = bus.NewTopic[greeting]("test.greeting.answered", 1)
)

// tracedBus is a gochannel bus recording its spans, with the W3C
// propagator installed as the app installs it, logging JSON into logs.
func tracedBus(t *testing.T, cfg bus.Config, logs *syncBuffer) (*bus.Bus, *tracetest.SpanRecorder, trace.Tracer) {
	t.Helper()
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var out = testenv.Output(t)
	if logs != nil {
		out = logs
	}
	logger := slog.New(bus.NewLogHandler(slog.NewJSONHandler(out, nil)))
	b, err := bus.New(context.Background(), cfg, bus.Options{Logger: logger, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, rec, tp.Tracer("test")
}

// TestTraceFollowsTheEvent checks the spans of one event: its publish is a
// child of the publisher's span, each handler attempt a child of the
// publish, a failed attempt says the bus retries, and what the handler
// publishes and logs belongs to its attempt's span.
func TestTraceFollowsTheEvent(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Retry.InitialInterval = time.Millisecond
	logs := &syncBuffer{}
	b, rec, tracer := tracedBus(t, cfg, logs)
	runs := 0
	answered := make(chan struct{})
	err := b.Register(
		bus.NewHandler("test.answer", traced, func(ctx context.Context, e bus.Event[greeting]) error {
			if runs++; runs == 1 {
				return errors.New("not yet")
			}
			slog.New(bus.NewLogHandler(slog.NewJSONHandler(logs, nil))).InfoContext(ctx, "Answering")
			return bus.Publish(ctx, b, tracedReply, e.AggregateID, greeting{Text: "hello back"})
		}),
		bus.NewHandler("test.listen", tracedReply, func(context.Context, bus.Event[greeting]) error {
			close(answered)
			return nil
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	start(t, b)

	ctx, root := tracer.Start(context.Background(), "request")
	if err := bus.Publish(ctx, b, traced, "g1", greeting{Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	root.End()
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the answer was not handled")
	}
	spans := waitSpans(t, rec, map[string]int{"publish test.greeting.traced": 1, "handle test.answer": 2, "publish test.greeting.answered": 1, "handle test.listen": 1})

	publish := only(t, spans, "publish test.greeting.traced")
	attempts := named(spans, "handle test.answer")
	reply := only(t, spans, "publish test.greeting.answered")
	listen := only(t, spans, "handle test.listen")
	if len(attempts) != 2 {
		t.Fatalf("%d spans of test.answer, want 2 (a failed attempt and its retry)", len(attempts))
	}
	childOf(t, publish, root.SpanContext())
	for _, a := range attempts {
		childOf(t, a, publish.SpanContext())
	}
	childOf(t, reply, attempts[1].SpanContext())
	childOf(t, listen, reply.SpanContext())
	for _, s := range spans {
		if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("span %q is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), root.SpanContext().TraceID())
		}
	}
	if got := eventNames(attempts[0]); !slices.Contains(got, bus.EventRetry) {
		t.Errorf("the failed attempt's events are %v, want %s", got, bus.EventRetry)
	}
	if got := eventNames(attempts[1]); slices.Contains(got, bus.EventRetry) {
		t.Errorf("the successful attempt's events are %v", got)
	}
	want := map[string]string{
		"messaging.system": "gochannel", "messaging.destination.name": "test.greeting.traced",
		"messaging.operation.type": "process", "messaging.consumer.group.name": "test.answer",
		"app.handler": "test.answer", "app.attempt": "2",
	}
	checkAttributes(t, attempts[1], want)
	checkAttributes(t, reply, map[string]string{"messaging.operation.type": "send", "app.handler": "test.answer"})
	if id := attribute(attempts[1], "app.event_id"); id == "" || attribute(attempts[1], "messaging.message.id") != id {
		t.Errorf("the attempt's app.event_id %q and messaging.message.id %q differ", id, attribute(attempts[1], "messaging.message.id"))
	}
	if id := attribute(attempts[1], "app.correlation_id"); id == "" || attribute(attempts[1], "messaging.message.conversation_id") != id {
		t.Errorf("the attempt's app.correlation_id %q and messaging.message.conversation_id differ", id)
	}

	// The handler's log line and the failed attempt's carry the trace.
	lines := logLines(t, logs)
	answering := lines["Answering"]
	if answering["trace_id"] != root.SpanContext().TraceID().String() || answering["span_id"] != attempts[1].SpanContext().SpanID().String() {
		t.Errorf("handler's log line %v, want trace_id %s and span_id %s", answering, root.SpanContext().TraceID(), attempts[1].SpanContext().SpanID())
	}
	if failed := lines["Handler attempt failed"]; failed["trace_id"] != root.SpanContext().TraceID().String() {
		t.Errorf("failed attempt's log line %v lacks trace_id %s", failed, root.SpanContext().TraceID())
	}
}

// TestTracePoisonDecision checks that an attempt the bus gives up on says
// so, and that the poison publish is its child.
func TestTracePoisonDecision(t *testing.T) {
	b, rec, tracer := tracedBus(t, bus.DefaultConfig(), nil)
	if err := b.Register(bus.NewHandler("test.refuse", traced, func(context.Context, bus.Event[greeting]) error {
		return bus.Permanent(errors.New("never"))
	})); err != nil {
		t.Fatal(err)
	}
	start(t, b)
	ctx, root := tracer.Start(context.Background(), "request")
	if err := bus.Publish(ctx, b, traced, "g1", greeting{}); err != nil {
		t.Fatal(err)
	}
	root.End()
	spans := waitSpans(t, rec, map[string]int{"handle test.refuse": 1, "publish " + bus.DefaultConfig().PoisonTopic: 1})
	attempt := only(t, spans, "handle test.refuse")
	if got := eventNames(attempt); !slices.Contains(got, bus.EventPoison) {
		t.Errorf("the refused attempt's events are %v, want %s", got, bus.EventPoison)
	}
	if attempt.Status().Description != "never" {
		t.Errorf("attempt status %+v, want the error", attempt.Status())
	}
	childOf(t, only(t, spans, "publish "+bus.DefaultConfig().PoisonTopic), attempt.SpanContext())
}

// TestTraceContextPropagatesWithoutRecording checks what the none exporter
// leaves: no span is recorded, but a trace the caller started reaches the
// handler and its log lines.
func TestTraceContextPropagatesWithoutRecording(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	logs := &syncBuffer{}
	logger := slog.New(bus.NewLogHandler(slog.NewJSONHandler(logs, nil)))
	b, err := bus.New(context.Background(), bus.DefaultConfig(), bus.Options{Logger: logger, TracerProvider: nooptrace.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	handled := make(chan string, 1)
	if err := b.Register(bus.NewHandler("test.answer", traced, func(ctx context.Context, _ bus.Event[greeting]) error {
		logger.InfoContext(ctx, "Answering")
		handled <- trace.SpanContextFromContext(ctx).TraceID().String()
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	start(t, b)
	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xa, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
		SpanID:  trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31},
		Remote:  true,
	})
	if err := bus.Publish(trace.ContextWithRemoteSpanContext(context.Background(), caller), b, traced, "g1", greeting{}); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-handled:
		if id != caller.TraceID().String() {
			t.Fatalf("the handler's context is in trace %s, want the caller's %s", id, caller.TraceID())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not handled")
	}
	if line := logs.lineWith("Answering"); !strings.Contains(line, `"trace_id":"`+caller.TraceID().String()+`"`) {
		t.Fatalf("handler's log line %s lacks the caller's trace id", line)
	}
}

// TestLogLinesCarryTheTrace checks the log handler on its own: a record
// logged with a context holding a span carries its ids, one without none.
func TestLogLinesCarryTheTrace(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(bus.NewLogHandler(slog.NewJSONHandler(&out, nil)))
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:  trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
	})
	logger.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "traced")
	logger.InfoContext(context.Background(), "untraced")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.Contains(lines[0], `"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708"`) {
		t.Errorf("traced line %s lacks the trace and span ids", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("untraced line %s has a trace id", lines[1])
	}
}

func start(t *testing.T, b *bus.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitSpans returns the ended spans once as many of each name as want
// says have ended: spans end in no fixed order (a handler may finish
// before the publish that reached it returns).
func waitSpans(t *testing.T, rec *tracetest.SpanRecorder, want map[string]int) []sdktrace.ReadOnlySpan {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		spans := rec.Ended()
		complete := true
		for name, n := range want {
			complete = complete && len(named(spans, name)) >= n
		}
		if complete {
			return spans
		}
	}
	t.Fatalf("spans %v not all ended within 10s", want)
	return nil
}

func named(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	return out
}

func only(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	found := named(spans, name)
	if len(found) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("%d spans named %q among %v, want 1", len(found), name, names)
	}
	return found[0]
}

func childOf(t *testing.T, s sdktrace.ReadOnlySpan, parent trace.SpanContext) {
	t.Helper()
	if s.Parent().SpanID() != parent.SpanID() || s.Parent().TraceID() != parent.TraceID() {
		t.Errorf("span %q has parent %s/%s, want %s/%s", s.Name(), s.Parent().TraceID(), s.Parent().SpanID(), parent.TraceID(), parent.SpanID())
	}
}

func eventNames(s sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, e := range s.Events() {
		names = append(names, e.Name)
	}
	return names
}

func attribute(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func checkAttributes(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := attribute(s, k); got != v {
			t.Errorf("span %q: %s = %q, want %q", s.Name(), k, got, v)
		}
	}
}

// logLines are the JSON log records by message.
func logLines(t *testing.T, logs *syncBuffer) map[string]map[string]any {
	t.Helper()
	lines := map[string]map[string]any{}
	for _, line := range logs.linesWith(`"msg"`) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines[rec["msg"].(string)] = rec
	}
	return lines
}
