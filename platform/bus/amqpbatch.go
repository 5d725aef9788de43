package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// amqpBatcher publishes batches on one channel of the publishing connection
// in confirm mode: a batch's messages go out back to back and their confirms
// are awaited together (amqp091's deferred confirmations), where watermill-
// amqp's publisher waits for each confirm before sending the next message.
// Messages are marshaled, addressed and declared exactly as that publisher
// does, from the same amqp.Config, so consumers cannot tell the two apart.
type amqpBatcher struct {
	// mu is held for a whole batch: batches on the channel do not interleave.
	mu       sync.Mutex
	ch       *amqp091.Channel // nil until the first batch and after a failed one
	declared map[string]bool  // exchanges declared on ch
	closed   bool

	// unconfirmed counts the batch's messages awaiting their confirm;
	// peakUnconfirmed is the most there ever were (tests read it).
	unconfirmed, peakUnconfirmed atomic.Int64
}

func (a *amqpAdapter) beginBatch(context.Context) (batchSession, error) {
	p := &a.batcher
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("amqp publisher closed")
	}
	if p.ch == nil || p.ch.IsClosed() {
		if err := p.open(a.pubConn); err != nil {
			p.mu.Unlock()
			return nil, err
		}
	}
	p.unconfirmed.Store(0)
	return &amqpBatch{p: p, cfg: a.pub.config}, nil
}

func (p *amqpBatcher) open(conn *amqp.ConnectionWrapper) error {
	if !conn.IsConnected() {
		return errors.New("amqp: not connected to the broker")
	}
	ch, err := conn.Connection().Channel()
	if err != nil {
		return fmt.Errorf("amqp: open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return fmt.Errorf("amqp: confirm mode: %w", err)
	}
	p.ch, p.declared = ch, map[string]bool{}
	return nil
}

// close closes the channel, after the batch in flight.
func (p *amqpBatcher) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.ch == nil {
		return nil
	}
	err := p.ch.Close()
	p.ch = nil
	if errors.Is(err, amqp091.ErrClosed) {
		return nil // gone with its connection
	}
	return err
}

// amqpBatch is one batch on the batcher's channel, which it holds.
type amqpBatch struct {
	p   *amqpBatcher
	cfg amqp.Config
}

func (b *amqpBatch) send(ctx context.Context, msgs []TopicMessage) ([]func() error, error) {
	waits := make([]func() error, 0, len(msgs))
	for _, m := range msgs {
		wait, err := b.publish(ctx, m.Topic, m.Message)
		if err != nil {
			return waits, err
		}
		waits = append(waits, wait)
	}
	return waits, nil
}

// publish sends msg as watermill-amqp's publisher does, without waiting for
// the confirm, and returns a function that waits for it.
func (b *amqpBatch) publish(ctx context.Context, topic string, msg *message.Message) (func() error, error) {
	ch := b.p.ch
	exchange := b.cfg.Exchange.GenerateName(topic)
	if exchange != "" && !b.p.declared[exchange] {
		if err := b.cfg.TopologyBuilder.ExchangeDeclare(ch, exchange, b.cfg); err != nil {
			return nil, fmt.Errorf("amqp: declare exchange %s: %w", exchange, err)
		}
		b.p.declared[exchange] = true
	}
	publishing, err := b.cfg.Marshaler.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("amqp: marshal message %s: %w", msg.UUID, err)
	}
	confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, b.cfg.Publish.GenerateRoutingKey(topic),
		b.cfg.Publish.Mandatory, b.cfg.Publish.Immediate, publishing)
	if err != nil {
		return nil, fmt.Errorf("amqp: publish message %s: %w", msg.UUID, err)
	}
	if n := b.p.unconfirmed.Add(1); n > b.p.peakUnconfirmed.Load() {
		b.p.peakUnconfirmed.Store(n) // only the batch's sender stores
	}
	return func() error {
		acked, err := confirm.WaitContext(ctx)
		b.p.unconfirmed.Add(-1)
		switch {
		case err != nil:
			return fmt.Errorf("amqp: waiting for the confirm of message %s: %w", msg.UUID, err)
		case acked:
			return nil
		case ch.IsClosed():
			// amqp091 nacks what is outstanding when the channel closes.
			return fmt.Errorf("amqp: channel closed before the broker confirmed message %s", msg.UUID)
		default:
			return fmt.Errorf("amqp: the broker nacked message %s", msg.UUID)
		}
	}, nil
}

// end drops the channel after a failure, whose confirms are left
// outstanding or which the broker may have closed, and releases it.
func (b *amqpBatch) end(failed bool) {
	if failed && b.p.ch != nil {
		_ = b.p.ch.Close()
		b.p.ch = nil
	}
	b.p.mu.Unlock()
}
