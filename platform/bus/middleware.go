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
// it, in the delivery that gave up and any earlier one that was rescheduled.
const MetaAttempts = "attempts_poisoned"

type attemptsKey struct{}

// countAttempts gives the delivery a run counter, starting from the runs of
// earlier deliveries, which attempt increments on every run retry makes,
// and records it on a message that fails for good, for the poison queue. A counter in the context, not in the metadata, costs
// nothing on success.
func countAttempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		runs := attemptsMade(msg)
		msg.SetContext(context.WithValue(msg.Context(), attemptsKey{}, &runs))
		out, err := h(msg)
		if err != nil {
			msg.Metadata.Set(MetaAttempts, strconv.Itoa(runs))
		}
		return out, err
	}
}

// attempt counts a run and logs its failure with the event's ids.
func attempt(logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			// Captured before the timeout middleware replaces the context:
			// only this one is cancelled by shutdown.
			ctx := msg.Context()
			n := 1
			if runs, ok := ctx.Value(attemptsKey{}).(*int); ok {
				*runs++
				n = *runs
			}
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
				"attempt", n,
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
		// The handler's timeout has cancelled the message context by now;
		// adapters that publish with it (Redis) would fail.
		msg.SetContext(context.WithoutCancel(msg.Context()))
		// A pattern handler subscribed to its pattern; a replay goes to the
		// event's own topic.
		msg.Metadata.Set(middleware.PoisonedTopicKey, eventTopic(msg.Metadata.Get(middleware.PoisonedTopicKey), msg))
	}
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	for _, msg := range msgs {
		md := msg.Metadata
		p.poisoned.WithLabelValues(md.Get(middleware.PoisonedTopicKey), md.Get(middleware.PoisonedHandlerKey)).Inc()
		p.logger.ErrorContext(msg.Context(), "Message sent to poison topic",
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
