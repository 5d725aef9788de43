package outbox

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/telemetry"
)

// tracerName is the instrumentation scope of the outbox's spans.
const tracerName = "github.com/example/monolith/platform/outbox"

// outboxTable is the table events wait in (watermill-sql's name for the
// outbox topic), for db.collection.name.
const outboxTable = "watermill_" + topic

// startInsert starts the span of writing msg, bound for destination, into
// the outbox: a child of the message's context (the transaction publishing
// it). The span's context goes into the metadata the row keeps, which
// carries the trace across the commit to the relay. A message that already
// carried a trace of another (an event replayed from the poison store) is
// linked to it.
func startInsert(destination, driver string, msg *message.Message) trace.Span {
	ctx := msg.Context()
	var opts []trace.SpanStartOption
	if earlier := trace.SpanContextFromContext(bus.ExtractTrace(context.Background(), msg.Metadata)); earlier.IsValid() &&
		earlier.TraceID() != trace.SpanContextFromContext(ctx).TraceID() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: earlier}))
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindProducer))
	ctx, span := otel.Tracer(tracerName).Start(ctx, "outbox insert "+destination, opts...)
	if span.IsRecording() {
		system := semconv.DBSystemNameSQLite
		if driver == db.DriverPostgres {
			system = semconv.DBSystemNamePostgreSQL
		}
		span.SetAttributes(system, semconv.DBCollectionName(outboxTable), semconv.DBOperationName("INSERT"),
			semconv.MessagingOperationTypeCreate, semconv.MessagingOperationName("outbox insert"))
		span.SetAttributes(bus.MessageAttributes(destination, msg)...)
	}
	bus.InjectTrace(ctx, msg.Metadata)
	return span
}

// startForward starts the span of the relay forwarding msg, read from the
// outbox row at offset, to destination: a child of the outbox insert whose
// context the row carries, and the parent, through the context it gives
// msg, of the broker publish. relayCtx bounds the forward.
func startForward(relayCtx context.Context, destination string, offset int64, msg *message.Message) trace.Span {
	ctx, span := otel.Tracer(tracerName).Start(bus.ExtractTrace(relayCtx, msg.Metadata), "outbox forward "+destination)
	if span.IsRecording() {
		span.SetAttributes(semconv.MessagingOperationName("outbox forward"), attribute.Int64("app.outbox.offset", offset))
		span.SetAttributes(bus.MessageAttributes(destination, msg)...)
	}
	msg.SetContext(ctx)
	return span
}

// endForwards ends the spans of a batch the broker confirmed the first
// confirmed of; the rest failed with err and stay in the outbox.
func endForwards(spans []trace.Span, confirmed int, err error) {
	for i, span := range spans {
		if i < confirmed {
			span.End()
		} else {
			telemetry.End(span, err)
		}
	}
}
