package bus

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/monolith/platform/telemetry"
)

// Trace context travels in message metadata under the W3C names, which
// every adapter carries like the envelope (AMQP headers, Redis stream
// fields, the outbox row), from the publisher's span to the handler's.
const (
	MetaTraceparent = "traceparent"
	MetaTracestate  = "tracestate"
)

// tracerName is the instrumentation scope of the bus's spans.
const tracerName = "github.com/example/monolith/platform/bus"

// Span events a failed handler attempt records: what the bus does next.
const (
	// EventRetry: the bus runs the handler again after a backoff.
	EventRetry = "retry"
	// EventPoison: the bus gives up and publishes the message to the poison
	// topic (a permanent error, or the last attempt failed).
	EventPoison = "poison"
	// EventRedeliver: neither retried nor poisoned; the message is nacked
	// and delivered again (shutdown, or a poison handler failed).
	EventRedeliver = "redeliver"
)

// InjectTrace writes ctx's trace context into md, replacing what md had,
// so that whoever handles the message continues ctx's trace. Nothing is
// written when ctx carries no trace.
func InjectTrace(ctx context.Context, md message.Metadata) {
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(md))
}

// ExtractTrace returns ctx carrying the trace context md holds, as the
// remote parent of the spans started with it.
func ExtractTrace(ctx context.Context, md message.Metadata) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(md))
}

// MessageAttributes describe msg, published to or consumed from topic, on a
// span: the destination and message id of the messaging semantic
// conventions, and the envelope's event and correlation ids.
func MessageAttributes(topic string, msg *message.Message) []attribute.KeyValue {
	attrs := []attribute.KeyValue{semconv.MessagingDestinationName(topic), semconv.MessagingMessageID(msg.UUID)}
	if id := msg.Metadata.Get(MetaEventID); id != "" {
		attrs = append(attrs, telemetry.EventIDKey.String(id))
	}
	if id := msg.Metadata.Get(MetaCorrelationID); id != "" {
		attrs = append(attrs, semconv.MessagingMessageConversationID(id), telemetry.CorrelationIDKey.String(id))
	}
	return attrs
}

// messagingSystem is messaging.system for an adapter: the semantic
// conventions name RabbitMQ; Redis and the in-process adapter get names of
// their own.
func messagingSystem(adapter string) attribute.KeyValue {
	switch adapter {
	case AdapterAMQP:
		return semconv.MessagingSystemRabbitMQ
	case AdapterRedisStream:
		return semconv.MessagingSystemKey.String("redis")
	case AdapterNATS:
		return semconv.MessagingSystemKey.String("nats")
	default:
		return semconv.MessagingSystemKey.String(adapter)
	}
}

// tracingPublisher is the outermost layer of the bus's publisher: a
// producer span per message around the rest of the chain (retries and, in
// a batch, the wait for the broker's confirm), whose context it writes into
// the message's metadata, replacing the caller's: the handler's span is a
// child of this one.
type tracingPublisher struct {
	message.Publisher
	tracer trace.Tracer
	system attribute.KeyValue
}

func (p tracingPublisher) Publish(topic string, msgs ...*message.Message) error {
	name := "publish " + topic
	spans := make([]trace.Span, len(msgs))
	callers := make([]context.Context, len(msgs))
	for i, msg := range msgs {
		callers[i] = msg.Context()
		ctx, span := p.tracer.Start(callers[i], name, trace.WithSpanKind(trace.SpanKindProducer))
		if span.IsRecording() {
			span.SetAttributes(p.system, semconv.MessagingOperationTypeSend, semconv.MessagingOperationName("publish"))
			span.SetAttributes(MessageAttributes(topic, msg)...)
			if h := message.HandlerNameFromCtx(ctx); h != "" {
				span.SetAttributes(telemetry.HandlerKey.String(h))
			}
		}
		InjectTrace(ctx, msg.Metadata)
		msg.SetContext(ctx)
		spans[i] = span
	}
	err := p.Publisher.Publish(topic, msgs...)
	for i, msg := range msgs {
		telemetry.End(spans[i], err)
		msg.SetContext(callers[i])
	}
	return err
}

// traceAttempt runs each attempt of h in a consumer span, a child of the
// trace context in the message's metadata (the publish span), and records
// on a failed one what the bus does next: [EventRetry], [EventPoison] or
// [EventRedeliver]. The attempt's context carries the span, so the events
// the handler publishes and the lines it logs belong to its trace.
func (b *Bus) traceAttempt(h Handler) message.HandlerMiddleware {
	name := "handle " + h.name
	attrs := []attribute.KeyValue{
		messagingSystem(b.cfg.Adapter),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("handle"),
		semconv.MessagingConsumerGroupName(h.name),
		telemetry.HandlerKey.String(h.name),
	}
	maxAttempts := b.cfg.Retry.MaxRetries + 1
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			caller := msg.Context()
			n := 1 // attempt, which runs next, counts this run
			if runs, ok := caller.Value(attemptsKey{}).(*int); ok {
				n = *runs + 1
			}
			ctx, span := b.tracer.Start(ExtractTrace(caller, msg.Metadata), name, trace.WithSpanKind(trace.SpanKindConsumer))
			if span.IsRecording() {
				span.SetAttributes(attrs...)
				span.SetAttributes(MessageAttributes(eventTopic(h.topic, msg), msg)...)
				span.SetAttributes(telemetry.AttemptKey.Int(n))
			}
			msg.SetContext(ctx)
			out, err := next(msg)
			if err != nil && span.IsRecording() {
				span.AddEvent(nextStep(err, n, maxAttempts, b.cfg.PoisonTopic))
			}
			telemetry.End(span, err)
			return out, err
		}
	}
}

// nextStep names what the retry and poison queue middleware do with err,
// returned by attempt n of maxAttempts, by the rules they apply.
func nextStep(err error, n, maxAttempts int, poisonTopic string) (string, trace.EventOption) {
	switch {
	case retryable(err) && n < maxAttempts:
		return EventRetry, trace.WithAttributes(telemetry.AttemptKey.Int(n), attribute.Int("app.max_attempts", maxAttempts))
	case poisonable(err):
		reason := "retries exhausted"
		if IsPermanent(err) {
			reason = "permanent error"
		}
		return EventPoison, trace.WithAttributes(attribute.String("app.poison_topic", poisonTopic), attribute.String("app.reason", reason))
	default:
		reason := "shutdown"
		if !errors.Is(err, context.Canceled) {
			reason = "poison handler failed"
		}
		return EventRedeliver, trace.WithAttributes(attribute.String("app.reason", reason))
	}
}
