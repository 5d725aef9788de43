package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// beginBatch publishes a batch with JetStream's asynchronous publish on the
// publisher's connection: every message goes out at once, in order, and
// the acks are awaited together, as AMQP's confirms are. watermill-nats's
// publisher waits for each ack before sending the next message: one round
// trip per message.
func (a *natsAdapter) beginBatch(context.Context) (batchSession, error) {
	return natsBatch{js: a.js, marshaler: natsMarshaler{a.cfg.SubjectPrefix}, timeout: a.publishTimeout}, nil
}

type natsBatch struct {
	js        nats.JetStreamContext
	marshaler natsMarshaler
	timeout   time.Duration // for an ack: the connection may be gone
}

func (s natsBatch) send(ctx context.Context, msgs []TopicMessage) ([]func() error, error) {
	waits := make([]func() error, 0, len(msgs))
	for _, m := range msgs {
		out, err := s.marshaler.Marshal(m.Topic, m.Message)
		if err != nil {
			return waits, fmt.Errorf("nats: marshal message %s: %w", m.Message.UUID, err)
		}
		ack, err := s.js.PublishMsgAsync(out)
		if err != nil {
			return waits, fmt.Errorf("nats: publish message %s: %w", m.Message.UUID, err)
		}
		id := m.Message.UUID
		waits = append(waits, func() error {
			timer := time.NewTimer(s.timeout)
			defer timer.Stop()
			select {
			case <-ack.Ok():
				return nil
			case err := <-ack.Err():
				return fmt.Errorf("nats: publish message %s: %w", id, err)
			case <-timer.C:
				return fmt.Errorf("nats: publish message %s: no ack from JetStream within %s", id, s.timeout)
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}
	return waits, nil
}

func (natsBatch) end(bool) {}
