package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/delay"
	"github.com/ThreeDotsLabs/watermill/message"
)

// A Scheduler stores messages and publishes each once it is due, durably:
// they survive a restart of every process. outbox.NewScheduler is one, on
// the application's database; the bus reschedules a handler's retries
// through it ([RetryAfter]).
type Scheduler interface {
	// Schedule stores msg to be published on topic at at.
	Schedule(ctx context.Context, topic string, at time.Time, msg *message.Message) error
}

// PublishAfter publishes payload as an event of topic, as [Publish] does,
// to be delivered no earlier than d from now, and returns its event id,
// which cancels it until then (outbox.CancelScheduled). p must store
// delayed messages: outbox.Publisher(tx), where the event joins the
// caller's transaction like any other; the [*Bus] refuses them.
func PublishAfter[T any](ctx context.Context, p Publisher, topic Topic[T], aggregateID string, payload T, d time.Duration) (string, error) {
	return PublishAt(ctx, p, topic, aggregateID, payload, time.Now().Add(d))
}

// PublishAt is [PublishAfter] with the time the event becomes due.
func PublishAt[T any](ctx context.Context, p Publisher, topic Topic[T], aggregateID string, payload T, at time.Time) (string, error) {
	msg, err := NewMessage(ctx, topic, aggregateID, payload)
	if err != nil {
		return "", err
	}
	SetDue(msg, at)
	if err := p.Publish(topic.Name(), msg); err != nil {
		return "", fmt.Errorf("publish %s due at %s: %w", topic.Name(), at.UTC().Format(time.RFC3339), err)
	}
	return msg.UUID, nil
}

// SetDue marks msg as due at at, with the metadata of Watermill's
// components/delay (_watermill_delayed_until, _watermill_delayed_for), the
// time to the nanosecond so that it is never delivered early.
func SetDue(msg *message.Message, at time.Time) {
	msg.Metadata.Set(delay.DelayedUntilKey, at.UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(delay.DelayedForKey, time.Until(at).Round(time.Millisecond).String())
}

// DueAt is when msg is due, and false for a message without delay metadata.
func DueAt(msg *message.Message) (time.Time, bool, error) {
	v := msg.Metadata.Get(delay.DelayedUntilKey)
	if v == "" {
		return time.Time{}, false, nil
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, true, fmt.Errorf("message %s: %s %q: %w", msg.UUID, delay.DelayedUntilKey, v, err)
	}
	return at, true, nil
}

// ClearDue removes the delay metadata of a message that is now due.
func ClearDue(msg *message.Message) {
	delete(msg.Metadata, delay.DelayedUntilKey)
	delete(msg.Metadata, delay.DelayedForKey)
}

// errDelayedOnBus refuses a delayed message published straight to the bus:
// no broker adapter holds messages, and delivering it at once would break
// the promise of PublishAfter.
var errDelayedOnBus = errors.New("bus: a delayed message cannot be published straight to the bus: publish it through outbox.Publisher(tx), which holds it until it is due")

func refuseDelayed(msgs []*message.Message) error {
	for _, msg := range msgs {
		if _, ok := msg.Metadata[delay.DelayedUntilKey]; ok {
			return errDelayedOnBus
		}
	}
	return nil
}

// retryAfterError is a handler's request to run the event again after d.
type retryAfterError struct {
	err error
	d   time.Duration
}

func (e retryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.err, e.d)
}

func (e retryAfterError) Unwrap() error { return e.err }

// RetryAfter asks for the event to be handled again after d, without
// holding a consumer: the bus acks it and stores a copy with its
// [Scheduler], due after d, addressed to this handler alone. It counts as
// one attempt against bus.retry.max_retries; the last attempt's error
// poisons the event as usual. Without a Scheduler (a bus outside the
// application), or for a broadcast handler, it is retried in the consumer
// like any error.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return retryAfterError{err, d}
}
