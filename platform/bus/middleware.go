package bus

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// MetaAttempts is set on a poisoned message: how many times the handler ran
// it in the delivery that gave up.
const MetaAttempts = "attempts_poisoned"

// metaAttempt counts the runs of the current delivery.
const metaAttempt = "bus_attempt"

// attempts counts handler runs on the message (retry calls it once per run)
// and logs each failure with the event's ids.
func attempts(logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			n, _ := strconv.Atoi(msg.Metadata.Get(metaAttempt))
			msg.Metadata.Set(metaAttempt, strconv.Itoa(n+1))
			// Captured before the timeout middleware replaces the context:
			// only this one is cancelled by shutdown.
			ctx := msg.Context()
			out, err := h(msg)
			if err == nil {
				return out, nil
			}
			if ctx.Err() != nil {
				// Aborted by shutdown, not failed: tell retry and the poison
				// queue to leave it for redelivery.
				return out, errors.Join(err, context.Canceled)
			}
			logger.WarnContext(ctx, "Handler attempt failed",
				"event_id", msg.UUID,
				"correlation_id", middleware.MessageCorrelationID(msg),
				"handler", message.HandlerNameFromCtx(ctx),
				"attempt", n+1,
				"permanent", IsPermanent(err),
				"error", firstLine(err.Error()))
			return out, err
		}
	}
}

// poisonPublisher counts and logs what the poison queue middleware publishes.
type poisonPublisher struct {
	message.Publisher
	poisoned *prometheus.CounterVec
	logger   *slog.Logger
}

func (p poisonPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		msg.Metadata.Set(MetaAttempts, msg.Metadata.Get(metaAttempt))
		delete(msg.Metadata, metaAttempt)
		// The handler's timeout has cancelled the message context by now;
		// adapters that publish with it (Redis) would fail.
		msg.SetContext(context.WithoutCancel(msg.Context()))
	}
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	for _, msg := range msgs {
		md := msg.Metadata
		p.poisoned.WithLabelValues(md.Get(middleware.PoisonedTopicKey), md.Get(middleware.PoisonedHandlerKey)).Inc()
		p.logger.Error("Message sent to poison topic",
			"event_id", md.Get(MetaEventID),
			"correlation_id", md.Get(MetaCorrelationID),
			"topic", md.Get(middleware.PoisonedTopicKey),
			"handler", md.Get(middleware.PoisonedHandlerKey),
			"attempts", md.Get(MetaAttempts),
			"reason", firstLine(md.Get(middleware.ReasonForPoisonedKey)))
	}
	return nil
}

// firstLine keeps logs of recovered panics to one line; the poison metadata
// keeps the whole stack.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
