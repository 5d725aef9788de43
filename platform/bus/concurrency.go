package bus

import (
	"container/heap"
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// fanIn merges one subscription of each of its subscribers into one channel:
// n consumers of a handler's queue or consumer group. Each consumer waits for
// the ack of its message before taking the next, so at most n messages are
// in flight.
type fanIn []message.Subscriber

func (f fanIn) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ins := make([]<-chan *message.Message, 0, len(f))
	for _, s := range f {
		// On an error the caller cancels ctx, which ends the subscriptions
		// already made and their forwarders.
		in, err := s.Subscribe(ctx, topic)
		if err != nil {
			return nil, err
		}
		ins = append(ins, in)
	}
	return merge(ctx, ins, 0), nil
}

// merge forwards the messages of ins into one channel, closed once they all
// are. With limit > 0, at most limit forwarded messages are unacked at a
// time: the next waits for an ack or a nack.
func merge(ctx context.Context, ins []<-chan *message.Message, limit int) <-chan *message.Message {
	out := make(chan *message.Message)
	var slots chan struct{}
	if limit > 0 {
		slots = make(chan struct{}, limit)
	}
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Go(func() {
			for msg := range in {
				if slots != nil {
					select {
					case slots <- struct{}{}:
					case <-ctx.Done():
						return // the adapter redelivers what it handed over unacked
					}
				}
				select {
				case out <- msg:
				case <-ctx.Done():
					return
				}
				if slots != nil {
					go func() {
						select {
						case <-msg.Acked():
						case <-msg.Nacked():
						case <-ctx.Done():
						}
						<-slots
					}()
				}
			}
		})
	}
	go func() { wg.Wait(); close(out) }()
	return out
}

func (f fanIn) Close() error {
	errs := make([]error, 0, len(f))
	for _, s := range f {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// keyedPool hands the messages of an in-process subscription (a Redis
// stream read without a group) to n workers, keeping the events of one
// aggregate in arrival order and one at a time.
//
// The pool acks the upstream message as soon as it is queued: such a
// subscription only waits for that ack before sending the next message, and
// nothing is acknowledged to a broker. The pool then redelivers a message its
// handler nacks at once, as gochannel does, so nack semantics are unchanged.
// A full queue stops the reading.
type keyedPool struct {
	sub message.Subscriber
	n   int
}

// keyedPoolQueue is how many messages a keyedPool holds, queued or in flight.
const keyedPoolQueue = 256

func (p keyedPool) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := p.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	q := newLanes(keyedPoolQueue)
	context.AfterFunc(ctx, q.stop)
	go func() {
		defer q.close()
		for msg := range in {
			// The copy is the pool's to deliver: msg's ack is the upstream's.
			q.push(copyMessage(msg))
			msg.Ack()
		}
	}()
	return serve(ctx, q, p.n), nil
}

func (p keyedPool) Close() error { return p.sub.Close() }

// serve starts n workers that hand q's messages to the returned channel, a
// worker taking the oldest message whose aggregate is not being handled, so
// with n = 1 everything goes out in arrival order. The channel closes once
// the workers end: q stopped, or closed and drained.
func serve(ctx context.Context, q *lanes, n int) <-chan *message.Message {
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				l, msg, ok := q.next()
				if !ok {
					return
				}
				deliver(ctx, msg, out)
				q.done(l)
			}
		})
	}
	go func() { wg.Wait(); close(out) }()
	return out
}

// copyMessage is msg.Copy, cloning the metadata whole instead of inserting
// it key by key into a map that regrows on the way.
func copyMessage(msg *message.Message) *message.Message {
	c := message.NewMessage(msg.UUID, msg.Payload)
	c.Metadata = maps.Clone(msg.Metadata)
	return c
}

// deliver sends msg until it is acked, a fresh copy after every nack, or
// until ctx ends.
func deliver(ctx context.Context, msg *message.Message, out chan<- *message.Message) {
	for m := msg; ; m = copyMessage(msg) {
		m.SetContext(ctx)
		select {
		case out <- m:
		case <-ctx.Done():
			return
		}
		select {
		case <-m.Acked():
			return
		case <-m.Nacked():
		case <-ctx.Done():
			return
		}
	}
}

// lanes queues messages by aggregate id. A lane is in the ready heap while it
// has messages and none of them is being handled.
// Pushes block while size messages are queued or in flight.
type lanes struct {
	mu      sync.Mutex
	cond    *sync.Cond // a lane is ready, or the queue ended
	space   *sync.Cond // a message was handled
	size    int
	held    int // queued or in flight
	busy    int // in flight: lanes a worker holds
	seq     uint64
	byKey   map[string]*lane
	ready   laneHeap
	closed  bool // no more pushes
	stopped bool // the subscription ended: drop what is queued
}

type lane struct {
	key  string
	msgs []queued
	busy bool
	// since is when the message in flight was queued (while busy).
	since time.Time
}

type queued struct {
	seq uint64
	msg *message.Message
	at  time.Time // when it was queued, for depth's oldest message
}

func newLanes(size int) *lanes {
	l := &lanes{byKey: map[string]*lane{}, size: size}
	l.cond = sync.NewCond(&l.mu)
	l.space = sync.NewCond(&l.mu)
	return l
}

// push queues msg, waiting while the queue is full; it drops msg once the
// queue is stopped.
func (q *lanes) push(msg *message.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.held >= q.size && !q.stopped {
		q.space.Wait()
	}
	if q.stopped {
		return
	}
	q.held++
	q.seq++
	key := msg.Metadata.Get(MetaAggregateID)
	if key == "" {
		// No aggregate, no order to keep; NUL keeps it apart from real ids.
		key = "\x00" + strconv.FormatUint(q.seq, 10)
	}
	l := q.byKey[key]
	if l == nil {
		l = &lane{key: key}
		q.byKey[key] = l
	}
	l.msgs = append(l.msgs, queued{q.seq, msg, time.Now()})
	if !l.busy && len(l.msgs) == 1 {
		heap.Push(&q.ready, l)
		q.cond.Signal()
	}
}

// next blocks until a lane is ready, marks it busy and returns its oldest
// message; ok is false once the subscription ended or its input is drained.
func (q *lanes) next() (l *lane, msg *message.Message, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.stopped && q.ready.Len() == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.stopped || q.ready.Len() == 0 {
		return nil, nil, false
	}
	l = heap.Pop(&q.ready).(*lane)
	msg, l.since = l.msgs[0].msg, l.msgs[0].at
	l.msgs[0] = queued{}
	l.msgs = l.msgs[1:]
	l.busy = true
	q.busy++
	return l, msg, true
}

// done releases l after its message was handled.
func (q *lanes) done(l *lane) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.held--
	q.busy--
	q.space.Signal()
	l.busy = false
	if len(l.msgs) == 0 {
		delete(q.byKey, l.key)
		return
	}
	heap.Push(&q.ready, l)
	q.cond.Signal()
}

// depth is how many messages wait for a worker and how many are in flight,
// and when the oldest of them was queued (zero when there are none).
func (q *lanes) depth() (waiting, inflight int, oldest time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, l := range q.byKey {
		at := l.since
		if !l.busy {
			at = l.msgs[0].at // a lane that is neither busy nor holds messages is deleted
		}
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	return q.held - q.busy, q.busy, oldest
}

func (q *lanes) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

func (q *lanes) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	q.cond.Broadcast()
	q.space.Broadcast()
}

// laneHeap orders ready lanes by the arrival of their oldest message.
type laneHeap []*lane

func (h laneHeap) Len() int           { return len(h) }
func (h laneHeap) Less(i, j int) bool { return h[i].msgs[0].seq < h[j].msgs[0].seq }
func (h laneHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *laneHeap) Push(x any)        { *h = append(*h, x.(*lane)) }
func (h *laneHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return l
}
