package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// TopicMessage is one message of a batch and the topic it is published to.
type TopicMessage struct {
	Topic   string
	Message *message.Message
}

// BatchPublisher publishes an ordered batch of messages, of one topic or
// several, without waiting for the broker between them. [*Bus] is one.
type BatchPublisher interface {
	// PublishBatch sends msgs in order and returns how many leading
	// messages the broker confirmed: all of them and a nil error, or fewer
	// and the error that stopped the rest. Messages after the confirmed
	// prefix may still have reached the broker: publish them again.
	PublishBatch(ctx context.Context, msgs []TopicMessage) (confirmed int, err error)
}

// batchWindow bounds the messages of one batch in flight at once.
const batchWindow = 1024

// PublishBatch sends msgs in order, each to its topic, pipelined on the
// broker: AMQP publishes them on one confirm-mode channel and waits for the
// confirms together, Redis sends the XADDs in pipelines, NATS publishes
// them asynchronously and waits for the acks together, gochannel
// publishes them one after the other. It returns how many leading messages
// the broker confirmed; the first failure (a nack, a lost connection, an
// XADD error) stops the messages not yet sent. Use it where the caller
// records progress and publishes the rest again, as the outbox relay does.
//
// Each message goes through the same publisher chain as [Bus.Publish]
// (Options.WrapPublisher, then the metrics, labelled with its topic), each
// on its own goroutine; the adapter sends them in batch order, and they
// return from the chain in batch order. The chain's retries are skipped:
// the caller publishes the unconfirmed tail again.
func (b *Bus) PublishBatch(ctx context.Context, msgs []TopicMessage) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	sess, err := b.beginBatch(ctx)
	if err != nil {
		return 0, fmt.Errorf("bus: publish batch: %w", err)
	}
	bt := newBatch(ctx, sess, len(msgs))
	contexts := make([]context.Context, len(msgs))
	for i, m := range msgs {
		contexts[i] = m.Message.Context()
		m.Message.SetContext(context.WithValue(contexts[i], batchSlotKey{}, batchSlot{bt, i}))
	}
	errs := make([]error, len(msgs))
	window := make(chan struct{}, batchWindow)
	var wg sync.WaitGroup
	for i, m := range msgs {
		if i == min(len(msgs), batchWindow)-1 {
			// Started once the window is full, the sender finds most of it
			// arrived: fewer, fuller round trips.
			go bt.send()
		}
		window <- struct{}{}
		wg.Go(func() {
			defer func() { <-window }()
			errs[i] = bt.returned(i, b.publisher.Publish(m.Topic, m.Message))
		})
	}
	wg.Wait()
	bt.abort(errBatchDone) // stops the sender if a failure left it waiting
	<-bt.sent
	sess.end(!errors.Is(bt.failure(), errBatchDone))
	for i, m := range msgs {
		m.Message.SetContext(contexts[i])
	}
	for i, err := range errs {
		if err != nil {
			return i, fmt.Errorf("bus: publish batch: message %d of %d (%s, %s): %w", i+1, len(msgs), msgs[i].Topic, msgs[i].Message.UUID, err)
		}
	}
	return len(msgs), nil
}

// batchSession is one batch on the adapter's connection.
type batchSession interface {
	// send hands msgs to the broker, after those of the earlier calls, and
	// returns for each a function that waits for the broker's verdict. On
	// an error, the first len(waits) messages were handed over.
	send(ctx context.Context, msgs []TopicMessage) (waits []func() error, err error)
	// end releases the session; failed tells that some message was not
	// confirmed.
	end(failed bool)
}

// batchStarter is an adapter that pipelines batches (AMQP, Redis Streams,
// NATS).
type batchStarter interface {
	beginBatch(ctx context.Context) (batchSession, error)
}

func (b *Bus) beginBatch(ctx context.Context) (batchSession, error) {
	if s, ok := b.adapter.(batchStarter); ok {
		return s.beginBatch(ctx)
	}
	return sequentialBatch{b.adapter.publisher()}, nil
}

// sequentialBatch publishes each message and waits for it before the next:
// gochannel hands messages over in process, where there is no round trip to
// save.
type sequentialBatch struct{ pub message.Publisher }

func (s sequentialBatch) send(_ context.Context, msgs []TopicMessage) ([]func() error, error) {
	waits := make([]func() error, 0, len(msgs))
	for _, m := range msgs {
		if err := s.pub.Publish(m.Topic, m.Message); err != nil {
			return waits, err
		}
		waits = append(waits, confirmedNow)
	}
	return waits, nil
}

func (sequentialBatch) end(bool) {}

func confirmedNow() error { return nil }

type batchSlotKey struct{}

// batchSlot marks a message, in its context, as message i of a batch.
type batchSlot struct {
	batch *batch
	i     int
}

// inBatch reports whether msgs are a batch's, which the chain does not
// retry: the batch's caller publishes the unconfirmed tail again.
func inBatch(msgs []*message.Message) bool {
	if len(msgs) == 0 {
		return false
	}
	_, ok := msgs[0].Context().Value(batchSlotKey{}).(batchSlot)
	return ok
}

// batchStage is the innermost layer of the bus's publisher: it hands a
// batch's messages to the batch, which sends them in batch order, and
// passes every other message on.
type batchStage struct{ message.Publisher }

func (s batchStage) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) > 0 {
		if slot, ok := msgs[0].Context().Value(batchSlotKey{}).(batchSlot); ok {
			if len(msgs) > 1 {
				// Only a wrapper that merges calls could do this; the batch
				// order of the merged messages would be lost.
				err := errors.New("a batch's message reached the adapter with other messages")
				slot.batch.abort(err)
				return err
			}
			return slot.batch.publish(slot.i, topic, msgs[0])
		}
	}
	return s.Publisher.Publish(topic, msgs...)
}

// errBatchDone stops a batch's sender once every message returned.
var errBatchDone = errors.New("batch done")

// batch orders the messages of one PublishBatch call. Each reaches the
// adapter on its own goroutine (publish); a sender goroutine (send) hands
// the messages that arrived to the session in batch order, as many at a
// time as are ready, and publish then waits for the broker's verdict on its
// message and for the message before it to return from the whole chain, so
// wrappers see the batch in order.
type batch struct {
	ctx   context.Context
	sess  batchSession
	slots []batchItem

	mu      sync.Mutex
	next    int  // the first message not yet handed to the sender
	stopped bool // the sender returned: nothing more is sent
	wake    chan struct{}
	sent    chan struct{} // closed when the sender returned

	abortOnce sync.Once
	aborted   chan struct{} // closed on the first failure: nothing more is sent
	abortErr  error         // set before aborted is closed
}

type batchItem struct {
	arrived  bool          // reached the adapter (under batch.mu)
	out      TopicMessage  // as it reached the adapter
	handed   chan struct{} // closed once the sender handed it over, or gave up
	wait     func() error  // the broker's verdict; nil if not handed over
	err      error         // why it was not handed over
	returned chan struct{} // closed when it returned from the chain
	ok       bool          // the broker confirmed it
}

func newBatch(ctx context.Context, sess batchSession, n int) *batch {
	bt := &batch{
		ctx:     ctx,
		sess:    sess,
		slots:   make([]batchItem, n),
		wake:    make(chan struct{}, 1),
		sent:    make(chan struct{}),
		aborted: make(chan struct{}),
	}
	for i := range bt.slots {
		bt.slots[i].handed = make(chan struct{})
		bt.slots[i].returned = make(chan struct{})
	}
	return bt
}

// publish hands message i to the sender and waits for the broker's verdict.
func (bt *batch) publish(i int, topic string, msg *message.Message) (err error) {
	it := &bt.slots[i]
	bt.mu.Lock()
	switch {
	case it.arrived:
		bt.mu.Unlock()
		// A wrapper published it twice: it would now follow later messages.
		err = errors.New("a batch's message reached the adapter twice")
		bt.abort(err)
		return err
	case bt.stopped:
		bt.mu.Unlock()
		return bt.notSent()
	}
	it.arrived, it.out = true, TopicMessage{Topic: topic, Message: msg}
	bt.mu.Unlock()
	select {
	case bt.wake <- struct{}{}:
	default:
	}
	defer func() {
		if err != nil {
			bt.abort(err)
		}
		if i > 0 {
			<-bt.slots[i-1].returned
		}
	}()
	select {
	case <-it.handed:
	case <-bt.ctx.Done():
		return bt.ctx.Err()
	}
	if it.wait == nil {
		return it.err
	}
	if err := it.wait(); err != nil {
		return err
	}
	it.ok = true
	return nil
}

// send hands the arrived messages to the session in batch order until all
// are sent or the batch fails.
func (bt *batch) send() {
	defer close(bt.sent)
	for {
		select {
		case <-bt.wake:
		case <-bt.aborted:
		case <-bt.ctx.Done():
			bt.abort(bt.ctx.Err())
		}
		bt.mu.Lock()
		if bt.failed() {
			// Whatever arrived is not sent; what arrives later sees stopped.
			bt.stopped = true
			bt.mu.Unlock()
			for i := bt.next; i < len(bt.slots); i++ {
				if bt.slots[i].arrived {
					bt.slots[i].err = bt.notSent()
					close(bt.slots[i].handed)
				}
			}
			return
		}
		from, to := bt.next, bt.next
		for to < len(bt.slots) && bt.slots[to].arrived {
			to++
		}
		bt.next = to
		bt.mu.Unlock()
		if from == to {
			continue
		}
		out := make([]TopicMessage, to-from)
		for i := range out {
			out[i] = bt.slots[from+i].out
		}
		waits, err := bt.sess.send(bt.ctx, out)
		for i := from; i < to; i++ {
			if k := i - from; k < len(waits) {
				bt.slots[i].wait = waits[k]
			} else {
				bt.slots[i].err = err
			}
			close(bt.slots[i].handed)
		}
		if err != nil {
			bt.abort(err)
		}
		if to == len(bt.slots) {
			return
		}
	}
}

// returned records that message i came back from the publisher chain with
// err, and returns its outcome: an error too if the chain returned without
// the broker confirming it (a wrapper that did not pass it on).
func (bt *batch) returned(i int, err error) error {
	if err == nil && !bt.slots[i].ok {
		err = errors.New("the publisher chain returned without passing the message to the broker")
	}
	if err != nil {
		bt.abort(err)
	}
	close(bt.slots[i].returned)
	return err
}

func (bt *batch) abort(err error) {
	bt.abortOnce.Do(func() {
		bt.abortErr = err
		close(bt.aborted)
	})
}

func (bt *batch) failed() bool {
	select {
	case <-bt.aborted:
		return true
	default:
		return false
	}
}

// failure is the first failure, or nil.
func (bt *batch) failure() error {
	if bt.failed() {
		return bt.abortErr
	}
	return nil
}

// notSent is what a message not sent because of another's failure returns.
func (bt *batch) notSent() error {
	return fmt.Errorf("not sent after another message of the batch failed: %w", bt.abortErr)
}
