package bus

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"
)

// NewLogHandler wraps h so that records logged with a context (InfoContext,
// ...) inside an event handler carry the event id, correlation id and
// handler name, records logged during a request carry its correlation id,
// and both carry the trace and span ids of the span ctx holds, when there
// is one (the request's, the handler attempt's).
func NewLogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if e, ok := EnvelopeFrom(ctx); ok {
		r.AddAttrs(slog.String("event_id", e.EventID), slog.String("correlation_id", e.CorrelationID))
		if name := message.HandlerNameFromCtx(ctx); name != "" {
			r.AddAttrs(slog.String("handler", name))
		}
	} else if id := CorrelationID(ctx); id != "" {
		r.AddAttrs(slog.String("correlation_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }

// watermillLogger adapts logger for Watermill, skipping its per-message
// trace and debug lines before their fields are built when those levels are
// off (they cost ~10% of a handled event otherwise).
func watermillLogger(logger *slog.Logger) watermill.LoggerAdapter {
	return quietWatermill{watermill.NewSlogLogger(logger), logger}
}

type quietWatermill struct {
	watermill.LoggerAdapter
	slog *slog.Logger
}

func (q quietWatermill) Trace(msg string, fields watermill.LogFields) {
	if q.slog.Enabled(context.Background(), watermill.LevelTrace) {
		q.LoggerAdapter.Trace(msg, fields)
	}
}

func (q quietWatermill) Debug(msg string, fields watermill.LogFields) {
	if q.slog.Enabled(context.Background(), slog.LevelDebug) {
		q.LoggerAdapter.Debug(msg, fields)
	}
}

func (q quietWatermill) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return quietWatermill{q.LoggerAdapter.With(fields), q.slog}
}
