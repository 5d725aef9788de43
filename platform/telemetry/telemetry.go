// Package telemetry installs OpenTelemetry tracing for the application and
// holds what the instrumented layers share.
//
// The W3C trace context (traceparent, tracestate) and baggage propagator is
// always installed, so a trace a caller starts travels through the HTTP
// request, the outbox row, the relay, the broker and every handler, whatever
// the exporter. With telemetry.tracing.exporter stdout or otlp, a tracer
// provider records spans and exports them; with none (the default) nothing
// is recorded and nothing is needed.
//
// The spans themselves are made where the work is: otelhttp around the
// public listener (platform/app), the transaction (platform/db), the outbox
// insert and the relay's forward (platform/outbox), the broker publish and
// each handler attempt (platform/bus). They read the process's global
// provider and propagator, which [Module] sets.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
)

// shutdownTimeout bounds the final flush on stop: an unreachable collector
// must not hold up the exit.
const shutdownTimeout = 5 * time.Second

// Attributes of our own that spans carry beside the semantic conventions'.
const (
	// EventIDKey is the event id of the message a span publishes or
	// handles (the envelope's event_id).
	EventIDKey = attribute.Key("app.event_id")
	// CorrelationIDKey is the correlation id shared by every event one
	// request caused (also in messaging.message.conversation_id).
	CorrelationIDKey = attribute.Key("app.correlation_id")
	// HandlerKey is the name of the handler handling, or publishing from.
	HandlerKey = attribute.Key("app.handler")
	// AttemptKey is the handler's run of this delivery, from 1.
	AttemptKey = attribute.Key("app.attempt")
)

// Module installs the propagator and, unless the exporter is none, a
// tracer provider as the process's globals, and flushes and shuts the
// provider down when the application stops (after everything that makes
// spans has stopped: its stop hook is registered first).
var Module = fx.Module("telemetry", fx.Invoke(install))

func install(lc fx.Lifecycle, cfg Config, logger *slog.Logger) error {
	otel.SetTextMapPropagator(Propagator())
	tp, err := NewTracerProvider(cfg, os.Stdout)
	if err != nil || tp == nil {
		return err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("Tracing failed", "exporter", cfg.Tracing.Exporter, "error", err)
	}))
	otel.SetTracerProvider(tp)
	logger.Info("Tracing", "exporter", cfg.Tracing.Exporter, "sampling_ratio", cfg.Tracing.SamplingRatio, "service", cfg.ServiceName)
	lc.Append(fx.StopHook(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			logger.Warn("Spans not exported at shutdown", "exporter", cfg.Tracing.Exporter, "error", err)
		}
	}))
	return nil
}

// Propagator reads and writes W3C trace context and baggage: traceparent,
// tracestate and baggage, in HTTP headers and message metadata alike.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// NewTracerProvider builds the provider cfg asks for, exporting to stdout
// for the stdout exporter; nil for the none exporter. Shut it down to flush
// what it buffers.
func NewTracerProvider(cfg Config, stdout io.Writer) (*sdktrace.TracerProvider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch cfg.Tracing.Exporter {
	case ExporterNone:
		return nil, nil
	case ExporterStdout:
		exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout))
	case ExporterOTLP:
		exp, err = otlpExporter(cfg.Tracing.OTLP)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry.tracing.exporter %s: %w", cfg.Tracing.Exporter, err)
	}
	res, err := resource.Merge(resource.Default(),
		resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(cfg.ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Tracing.SamplingRatio))),
	), nil
}

// otlpExporter sends to <endpoint>/v1/traces, as the OTEL_EXPORTER_OTLP_ENDPOINT
// convention does with a base URL.
func otlpExporter(cfg OTLPConfig) (sdktrace.SpanExporter, error) {
	u, err := endpointURL(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpoint(u.Host),
		otlptracehttp.WithURLPath(path.Join("/", u.Path, "v1/traces")),
	}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	// New connects nothing: an unreachable collector fails exports, which
	// the error handler logs, never start-up.
	return otlptracehttp.New(context.Background(), opts...)
}

// End ends span, marking it failed with err's first line when err is not
// nil (the whole error is recorded as an exception event).
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, firstLine(err.Error()))
	}
	span.End()
}

func firstLine(s string) string {
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
