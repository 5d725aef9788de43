package bus

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// goChannelAdapter keeps events in process with the semantics of Watermill's
// GoChannel: every handler gets every event published while it is
// subscribed, a nack redelivers at once, nothing survives a restart.
//
// It is a pub/sub of its own on Watermill's interfaces, for speed and for
// bounded memory: GoChannel copies each message twice and starts two
// goroutines per message, and then either queues without bound under a
// flood or, with BlockPublishUntilSubscriberAck, makes every publish wait
// for each subscriber in turn. Here Publish puts one copy of each message
// into every subscribed handler's queue and returns; the handler's workers
// take them in aggregate order (see lanes); a full queue blocks Publish.
type goChannelAdapter struct {
	queueSize int

	mu       sync.RWMutex
	topics   map[string][]*lanes // the slices are replaced, never modified, so Publish reads them unlocked
	patterns []patternQueue      // replaced, never modified
	queues   map[string]*lanes   // by handler name, for depths
	closed   bool
}

// patternQueue is a pattern handler's queue: it gets every topic the
// pattern matches, whoever declared it.
type patternQueue struct {
	pattern string
	q       *lanes
}

func newGoChannel(cfg Config) *goChannelAdapter {
	return &goChannelAdapter{queueSize: cfg.GoChannel.QueueSize, topics: map[string][]*lanes{}, queues: map[string]*lanes{}}
}

func (a *goChannelAdapter) publisher() message.Publisher { return a }

func (a *goChannelAdapter) subscriber(h Handler) (message.Subscriber, bool, error) {
	return goChannelSubscriber{a, h.concurrency, h.name}, false, nil
}

func (a *goChannelAdapter) check(context.Context) error { return nil }

// Publish queues msgs for every handler of topic, in order; an event
// published while no handler is subscribed is dropped, as in GoChannel.
func (a *goChannelAdapter) Publish(topic string, msgs ...*message.Message) error {
	a.mu.RLock()
	closed, queues, patterns := a.closed, a.topics[topic], a.patterns
	a.mu.RUnlock()
	if closed {
		return errors.New("gochannel: publish after close")
	}
	for _, p := range patterns {
		if Match(p.pattern, topic) {
			queues = append(slices.Clip(queues), p.q)
		}
	}
	for _, msg := range msgs {
		for _, q := range queues {
			// Each handler acks its own copy; the publisher keeps msg.
			q.push(copyMessage(msg))
		}
	}
	return nil
}

func (a *goChannelAdapter) Close() error { return a.close() }

func (a *goChannelAdapter) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for _, queues := range a.topics {
		for _, q := range queues {
			q.stop()
		}
	}
	for _, p := range a.patterns {
		p.q.stop()
	}
	return nil
}

func (a *goChannelAdapter) subscribe(ctx context.Context, topic string, n int, handler string) (<-chan *message.Message, error) {
	q := newLanes(a.queueSize)
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, errors.New("gochannel: subscribe after close")
	}
	if IsPattern(topic) {
		a.patterns = append(slices.Clip(a.patterns), patternQueue{topic, q})
	} else {
		a.topics[topic] = append(slices.Clip(a.topics[topic]), q)
	}
	a.queues[handler] = q
	a.mu.Unlock()
	context.AfterFunc(ctx, func() {
		a.mu.Lock()
		if IsPattern(topic) {
			a.patterns = slices.DeleteFunc(slices.Clone(a.patterns), func(p patternQueue) bool { return p.q == q })
		} else {
			a.topics[topic] = slices.DeleteFunc(slices.Clone(a.topics[topic]), func(l *lanes) bool { return l == q })
		}
		if a.queues[handler] == q {
			delete(a.queues, handler)
		}
		a.mu.Unlock()
		q.stop()
	})
	return serve(ctx, q, n), nil
}

// goChannelSubscriber subscribes a handler with n workers.
type goChannelSubscriber struct {
	a       *goChannelAdapter
	n       int
	handler string
}

func (s goChannelSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.a.subscribe(ctx, topic, s.n, s.handler)
}

// Close does nothing: a subscription ends with its context, the queues with
// the adapter.
func (s goChannelSubscriber) Close() error { return nil }
