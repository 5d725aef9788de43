package bus

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// drainingSubscriber makes closing graceful on every adapter. Watermill's
// router closes a handler's subscriber as soon as it starts closing, and the
// adapters then nack (AMQP, Redis) or drop (gochannel) the messages still in
// flight, so a handler finishing during close would be redelivered. This
// wrapper instead stops taking new messages, lets in-flight ones finish and
// be acked for up to timeout, cancels what is left, and only then closes the
// real subscriber.
type drainingSubscriber struct {
	sub     message.Subscriber
	owned   bool // close sub too (false when the adapter shares it)
	timeout time.Duration

	mu       sync.Mutex
	stopped  bool
	inflight sync.WaitGroup

	stopping   chan struct{}
	abort      context.Context // cancelled when the drain times out
	abortFn    context.CancelFunc
	subCancels []context.CancelFunc
	once       sync.Once
}

func newDrainingSubscriber(sub message.Subscriber, owned bool, timeout time.Duration) *drainingSubscriber {
	abort, abortFn := context.WithCancel(context.Background())
	return &drainingSubscriber{sub: sub, owned: owned, timeout: timeout, stopping: make(chan struct{}), abort: abort, abortFn: abortFn}
}

func (d *drainingSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	// The router cancels ctx when it starts closing; the real subscription
	// must outlive that until in-flight messages are acked.
	subCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in, err := d.sub.Subscribe(subCtx, topic)
	if err != nil {
		cancel()
		return nil, err
	}
	d.mu.Lock()
	d.subCancels = append(d.subCancels, cancel)
	d.mu.Unlock()

	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for {
			select {
			case <-d.stopping:
				return
			case msg, ok := <-in:
				if !ok {
					return
				}
				if !d.track(msg) {
					msg.Nack() // closing: the broker redelivers it
					return
				}
				select {
				case out <- msg:
				case <-d.stopping:
					d.inflight.Done() // tracked, but the router never sees it
					msg.Nack()
					return
				}
			}
		}
	}()
	return out, nil
}

// track counts msg as in flight until [drainingSubscriber.handled] sees the
// router's chain return for it, and gives it a context that survives the
// router's close but not the drain timeout.
func (d *drainingSubscriber) track(msg *message.Message) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return false
	}
	d.inflight.Add(1)
	msg.SetContext(detached{d.abort, msg.Context()})
	return true
}

// handled is the outermost middleware of the handler: the router acks or
// nacks the message as soon as it returns, and every message track counted
// reaches it, since the router handles all that its subscription delivers.
func (d *drainingSubscriber) handled(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		defer d.inflight.Done()
		return h(msg)
	}
}

// detached has the values of one context and the cancellation of another,
// without the goroutine or cancel func context.AfterFunc would cost.
type detached struct {
	context.Context // cancellation: a context.WithCancel of Background, with no values
	values          context.Context
}

// Value asks the cancelling context first. It holds no values, so the one
// key it answers is the context package's own, with which context.WithCancel
// and WithTimeout (Watermill's Timeout middleware) find the cancelCtx behind
// a parent and register with it; a parent they cannot see through costs a
// goroutine per message to watch.
func (c detached) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.values.Value(key)
}

func (d *drainingSubscriber) Close() error {
	var err error
	d.once.Do(func() {
		d.mu.Lock()
		d.stopped = true
		close(d.stopping)
		d.mu.Unlock()

		drained := make(chan struct{})
		go func() { d.inflight.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(d.timeout):
			d.abortFn() // handlers see a cancelled context and nack
			<-drained
		}
		d.abortFn()
		// The router acks a message just after handled returns, and the
		// adapters send an ack from their own goroutine once the message is
		// acked, and give up on it when they are closed or their context
		// ends first (both Redis and AMQP select on these alongside the
		// ack): give them a moment to send the last ones.
		time.Sleep(ackFlushDelay)
		if d.owned {
			err = d.sub.Close() // waits for the adapter's goroutines
		}
		d.mu.Lock()
		for _, cancel := range d.subCancels {
			cancel()
		}
		d.mu.Unlock()
	})
	return err
}

// ackFlushDelay is how long Close lets adapters send their last acks.
const ackFlushDelay = 50 * time.Millisecond
