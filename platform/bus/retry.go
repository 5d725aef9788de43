package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// MetaAttemptsMade is set on a rescheduled copy of an event: how many times
// its handler ran it in earlier deliveries. Attempts carry over, so
// bus.retry.max_retries bounds them across every delivery of the event.
const MetaAttemptsMade = "attempts_made"

// metaRescheduledTo marks, on the delivery that was acked, when its copy is
// due: observers report the delivery as rescheduled.
const metaRescheduledTo = "rescheduled_to"

// errRedeliver marks a failure after which the message must be delivered
// again as it is: neither retried nor poisoned.
var errRedeliver = errors.New("left for redelivery")

// backoff is the wait before the attempt that follows attempt n (n >= 1):
// initial_interval, multiplied by multiplier after each attempt, at most
// max_interval.
func (c RetryConfig) backoff(n int) time.Duration {
	d := float64(c.InitialInterval) * math.Pow(c.Multiplier, float64(n-1))
	if d >= float64(c.MaxInterval) {
		return c.MaxInterval
	}
	return time.Duration(d)
}

// rescheduleBeyond is the longest backoff h waits for in the consumer
// before it reschedules instead; 0: it always waits.
func (b *Bus) rescheduleBeyond(h Handler) time.Duration {
	if !b.reschedules(h) {
		return 0
	}
	if h.rescheduleBeyond > 0 {
		return h.rescheduleBeyond
	}
	return b.cfg.Retry.RescheduleBeyond
}

// reschedules reports whether h's retries can be rescheduled: the bus has a
// Scheduler, and h is neither broadcast (a copy would reach every instance
// again) nor a poison handler (never poisoned, so never given up on).
func (b *Bus) reschedules(h Handler) bool {
	return b.scheduler != nil && !h.broadcast && !h.poison
}

// attemptsMade is how many times the handler ran the event before this
// delivery.
func attemptsMade(msg *message.Message) int {
	n, _ := strconv.Atoi(msg.Metadata.Get(MetaAttemptsMade))
	return max(n, 0)
}

// retry runs h again after a transient error, waiting the backoff of
// bus.retry before each attempt, until the event's attempts (earlier
// deliveries included) reach max_retries+1. A wait longer than h's
// reschedule threshold, and a [RetryAfter], are left to reschedule.
//
// It is the bus's own rather than Watermill's middleware.Retry: in v1.5.2
// that one's ShouldRetry hook advances the backoff it reports, so every
// wait is the next one's (100ms, 400ms, 1.6s for 50ms doubling), and its
// attempts cannot carry over a rescheduled delivery.
func (b *Bus) retry(h Handler) message.HandlerMiddleware {
	maxAttempts := b.cfg.Retry.MaxRetries + 1
	beyond := b.rescheduleBeyond(h)
	reschedules := b.reschedules(h)
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			runs, _ := ctx.Value(attemptsKey{}).(*int)
			for {
				// The timeout middleware replaced the context of the
				// previous attempt (watermill #467).
				msg.SetContext(ctx)
				out, err := next(msg)
				if err == nil || !retryable(err) || runs == nil || *runs >= maxAttempts {
					return out, err
				}
				if reschedules && errors.As(err, new(retryAfterError)) {
					return out, err // reschedule's to store
				}
				wait := b.cfg.Retry.backoff(*runs)
				if beyond > 0 && wait > beyond {
					return out, retryAfterError{err, wait}
				}
				timer := time.NewTimer(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
					timer.Stop()
					return out, errors.Join(err, context.Canceled)
				}
			}
		}
	}
}

// reschedule acks an event whose handler asked to run it later
// ([RetryAfter], or a backoff beyond its threshold) and stores a copy with
// the Scheduler, due then, addressed to the handler alone and carrying the
// attempts made. Past the last attempt the error goes on to the poison
// queue. If the copy cannot be stored, the event is left for redelivery.
func (b *Bus) reschedule(h Handler) message.HandlerMiddleware {
	maxAttempts := b.cfg.Retry.MaxRetries + 1
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := next(msg)
			var later retryAfterError
			if err == nil || !errors.As(err, &later) || !retryable(err) {
				return out, err
			}
			runs, _ := msg.Context().Value(attemptsKey{}).(*int)
			if runs == nil || *runs >= maxAttempts {
				return out, err
			}
			due := time.Now().Add(later.d)
			again := message.NewMessage(msg.UUID, msg.Payload)
			again.Metadata = maps.Clone(msg.Metadata)
			again.Metadata.Set(MetaReplayFor, h.name)
			again.Metadata.Set(MetaAttemptsMade, strconv.Itoa(*runs))
			SetDue(again, due)
			// The timeout middleware cancelled the attempt's context on its
			// way out; the trace and correlation it carries still apply.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), b.cfg.PublishTimeout)
			defer cancel()
			again.SetContext(ctx)
			if serr := b.scheduler.Schedule(ctx, eventTopic(h.topic, msg), due, again); serr != nil {
				b.logger.ErrorContext(msg.Context(), "Handler asked to retry later and the event could not be rescheduled; it is left for redelivery",
					"event_id", msg.UUID, "handler", h.name, "error", serr)
				return out, errors.Join(fmt.Errorf("reschedule: %w", serr), err, errRedeliver)
			}
			msg.Metadata.Set(metaRescheduledTo, due.UTC().Format(time.RFC3339Nano))
			b.logger.InfoContext(msg.Context(), "Handler attempt rescheduled",
				"event_id", msg.UUID, "handler", h.name, "attempt", *runs, "due_in", later.d, "error", firstLine(later.err.Error()))
			return out, nil
		}
	}
}
