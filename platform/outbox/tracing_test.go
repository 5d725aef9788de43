package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
)

// traced installs a recording tracer provider and the W3C propagator as
// the process's globals for the test.
func traced(t *testing.T) (*tracetest.SpanRecorder, trace.Tracer) {
	t.Helper()
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })
	return rec, tp.Tracer("test")
}

// TestTraceCrossesTheOutbox checks that the row carries the trace across
// the commit: the transaction is a child of the caller's span, the insert
// of the transaction, the relay's forward of the insert, and the message
// handed on carries the forward's span.
func TestTraceCrossesTheOutbox(t *testing.T) {
	rec, tracer := traced(t)
	d := dbtest.Open(t, db.DriverSQLite)
	out := &recorder{}
	startRelay(t, d, out)

	ctx, root := tracer.Start(context.Background(), "request")
	err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		return bus.Publish(ctx, outbox.Publisher(tx), placed, "order-1", order{Seq: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	root.End()
	waitLen(t, out, 1)

	spans := ofTrace(rec.Ended(), root.SpanContext().TraceID())
	tx := onlySpan(t, spans, "transaction", root.SpanContext())
	insert := onlySpan(t, spans, "outbox insert shop.order.placed", tx.SpanContext())
	forward := trace.SpanFromContext(out.msgs[0].Context()).SpanContext()
	if forward.TraceID() != root.SpanContext().TraceID() {
		t.Fatalf("the forwarded message's context is in trace %s, want %s", forward.TraceID(), root.SpanContext().TraceID())
	}
	// The forward ends once the publish it wraps returned.
	for deadline := time.Now().Add(10 * time.Second); len(ofName(rec.Ended(), "outbox forward shop.order.placed")) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	fwd := onlySpan(t, ofTrace(rec.Ended(), root.SpanContext().TraceID()), "outbox forward shop.order.placed", insert.SpanContext())
	if fwd.SpanContext().SpanID() != forward.SpanID() {
		t.Errorf("the forwarded message carries span %s, want the forward's %s", forward.SpanID(), fwd.SpanContext().SpanID())
	}

	// A transaction outside a trace starts none.
	before := len(rec.Ended())
	if err := d.InTx(context.Background(), func(context.Context, *db.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Ended()); n != before {
		t.Errorf("an untraced transaction made %d spans", n-before)
	}
}

// TestOutboxInsertLinksAnEarlierTrace checks that a message already carrying
// another trace (a replay from the poison store) is linked to it.
func TestOutboxInsertLinksAnEarlierTrace(t *testing.T) {
	rec, tracer := traced(t)
	d := dbtest.Open(t, db.DriverSQLite)
	startRelay(t, d, &recorder{}) // creates the outbox table

	earlierCtx, earlier := tracer.Start(context.Background(), "the first delivery")
	earlier.End()
	msg := message.NewMessage("m1", []byte(`{"seq":1}`))
	bus.InjectTrace(earlierCtx, msg.Metadata)

	ctx, root := tracer.Start(context.Background(), "replay")
	err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		msg.SetContext(ctx)
		return outbox.Publisher(tx).Publish(placed.Name(), msg)
	})
	if err != nil {
		t.Fatal(err)
	}
	root.End()
	insert := onlySpan(t, ofTrace(rec.Ended(), root.SpanContext().TraceID()), "outbox insert shop.order.placed", trace.SpanContext{})
	if links := insert.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != earlier.SpanContext().SpanID() {
		t.Fatalf("insert links %v, want the earlier delivery %s", links, earlier.SpanContext().SpanID())
	}
	if got := trace.SpanContextFromContext(bus.ExtractTrace(context.Background(), msg.Metadata)); got.SpanID() != insert.SpanContext().SpanID() {
		t.Fatalf("the row carries span %s, want the insert's %s", got.SpanID(), insert.SpanContext().SpanID())
	}
}

func ofTrace(spans []sdktrace.ReadOnlySpan, id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

func ofName(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// onlySpan is the one span named name, a child of parent unless parent is
// the zero span context.
func onlySpan(t *testing.T, spans []sdktrace.ReadOnlySpan, name string, parent trace.SpanContext) sdktrace.ReadOnlySpan {
	t.Helper()
	found := ofName(spans, name)
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1", len(found), name)
	}
	if parent.IsValid() && found[0].Parent().SpanID() != parent.SpanID() {
		t.Fatalf("span %q has parent %s, want %s", name, found[0].Parent().SpanID(), parent.SpanID())
	}
	return found[0]
}
