package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/bus"
)

// The raw rows are the physical limit each bus row is held to: the
// broker's own client with the bus's durability, no Watermill. They carry
// the same payload bytes, without the envelope.

// setupRaw builds the raw row of r.Adapter.
func setupRaw(ctx context.Context, e *env, r row, rec *recorder) (*target, error) {
	switch r.Adapter {
	case bus.AdapterGoChannel:
		return rawChannel(r, rec), nil
	case bus.AdapterAMQP:
		return rawAMQP(ctx, e, r, rec)
	case bus.AdapterRedisStream:
		return rawRedis(ctx, e, r, rec)
	case bus.AdapterNATS:
		return rawNATS(e, r, rec)
	}
	return nil, fmt.Errorf("no raw row on %s", r.Adapter)
}

// rawChannel is gochannel's limit: a Go channel with the adapter's buffer
// between the publishing goroutines and c consuming ones.
func rawChannel(r row, rec *recorder) *target {
	ch := make(chan []byte, bus.DefaultConfig().GoChannel.QueueSize)
	var wg sync.WaitGroup
	for range r.C {
		wg.Go(func() {
			for body := range ch {
				rec.record(sentOf(body))
			}
		})
	}
	return &target{
		publish: func(_ context.Context, _, k int, sent int64) error {
			for range k {
				ch <- appendBody(make([]byte, 0, r.Payload), r.Payload, sent)
			}
			return nil
		},
		close: func() error {
			close(ch)
			wg.Wait()
			return nil
		},
	}
}

// amqpWindow is how many publishes a raw AMQP channel has in flight before
// it waits for the oldest confirm.
const amqpWindow = 256

// confirmChannel is one publishing channel in confirm mode and its
// outstanding confirms, oldest first.
type confirmChannel struct {
	ch      *amqp091.Channel
	pending []*amqp091.DeferredConfirmation
}

func (c *confirmChannel) waitUntil(n int) error {
	for len(c.pending) > n {
		if !c.pending[0].Wait() {
			return errors.New("broker nacked a publish")
		}
		c.pending = c.pending[1:]
	}
	return nil
}

// rawAMQP publishes persistent messages on channels in confirm mode with an
// asynchronous window of confirms, into the bus's topology (a durable topic
// exchange and a durable queue), and consumes with c consumers, each on its
// own channel with the bus's share of the prefetch, acking each delivery.
func rawAMQP(ctx context.Context, e *env, r row, rec *recorder) (*target, error) {
	n := e.names(r.Kind)
	cfg := busConfig(e, r.Adapter).AMQP
	pubConn, err := amqp091.Dial(e.amqpURL)
	if err != nil {
		return nil, err
	}
	subConn, err := amqp091.Dial(e.amqpURL)
	if err != nil {
		_ = pubConn.Close()
		return nil, err
	}
	var wg sync.WaitGroup
	closeAll := func() error {
		errs := []error{pubConn.Close(), subConn.Close()}
		wg.Wait()
		return errors.Join(append(errs, cleanupBroker(e, r.Adapter, n.topic, []string{n.handler}))...)
	}
	fail := func(err error) (*target, error) { return nil, errors.Join(err, closeAll()) }

	setupCh, err := subConn.Channel()
	if err != nil {
		return fail(err)
	}
	if err := errors.Join(
		setupCh.ExchangeDeclare(cfg.Exchange, "topic", true, false, false, false, nil),
		declareQueue(setupCh, n.handler),
		setupCh.QueueBind(n.handler, n.topic, cfg.Exchange, false, nil),
	); err != nil {
		return fail(err)
	}
	for i := range r.C {
		ch, err := subConn.Channel()
		if err != nil {
			return fail(err)
		}
		if err := ch.Qos(max(1, cfg.Prefetch/r.C), 0, false); err != nil {
			return fail(err)
		}
		deliveries, err := ch.ConsumeWithContext(context.WithoutCancel(ctx), n.handler, "busbench-"+strconv.Itoa(i+1), false, false, false, false, nil)
		if err != nil {
			return fail(err)
		}
		wg.Go(func() {
			for d := range deliveries {
				rec.record(sentOf(d.Body))
				_ = d.Ack(false)
			}
		})
	}

	// One publishing channel per publisher at most.
	pool := newPublishPool(func() (*confirmChannel, error) {
		ch, err := pubConn.Channel()
		if err != nil {
			return nil, err
		}
		if err := ch.Confirm(false); err != nil {
			return nil, err
		}
		return &confirmChannel{ch: ch}, nil
	})
	return &target{
		publish: func(ctx context.Context, _, k int, sent int64) error {
			c, err := pool.take()
			if err != nil {
				return err
			}
			defer pool.put(c)
			for range k {
				if err := c.waitUntil(amqpWindow - 1); err != nil {
					return err
				}
				dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, cfg.Exchange, n.topic, false, false, amqp091.Publishing{
					ContentType:  "application/json",
					DeliveryMode: amqp091.Persistent,
					Body:         appendBody(make([]byte, 0, r.Payload), r.Payload, sent),
				})
				if err != nil {
					return err
				}
				c.pending = append(c.pending, dc)
			}
			return nil
		},
		// Published means confirmed: wait for every channel's window.
		flush: func(context.Context) error {
			var errs []error
			for _, c := range pool.all() {
				errs = append(errs, c.waitUntil(0))
			}
			return errors.Join(errs...)
		},
		close: closeAll,
	}, nil
}

// publishPool gives each publishing goroutine a publishing handle (an AMQP
// channel, a JetStream context) with a window of its own, opened on first
// need and kept for the next call, and lists them all for the flush.
type publishPool[T any] struct {
	open func() (T, error)

	mu     sync.Mutex
	free   []T
	opened []T
}

func newPublishPool[T any](open func() (T, error)) *publishPool[T] {
	return &publishPool[T]{open: open}
}

func (p *publishPool[T]) take() (T, error) {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		h := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return h, nil
	}
	p.mu.Unlock()
	h, err := p.open()
	if err != nil {
		return h, err
	}
	p.mu.Lock()
	p.opened = append(p.opened, h)
	p.mu.Unlock()
	return h, nil
}

func (p *publishPool[T]) put(h T) {
	p.mu.Lock()
	p.free = append(p.free, h)
	p.mu.Unlock()
}

func (p *publishPool[T]) all() []T {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.opened)
}

// declareQueue declares a durable queue as the bus's topology does.
func declareQueue(ch *amqp091.Channel, name string) error {
	_, err := ch.QueueDeclare(name, true, false, false, false, nil)
	return err
}

// rawRedis writes with pipelined XADD (MAXLEN ~ as the bus) and reads with
// c consumers of one group, XREADGROUP COUNT 100, acking each read's
// entries with one XACK.
func rawRedis(ctx context.Context, e *env, r row, rec *recorder) (*target, error) {
	n := e.names(r.Kind)
	cfg := busConfig(e, r.Adapter).Redis
	// Each blocked XREADGROUP holds a connection: room for every consumer
	// and publisher.
	client := redis.NewClient(&redis.Options{Addr: e.redisAddr, PoolSize: r.C + 64})
	if err := client.XGroupCreateMkStream(ctx, n.topic, n.handler, "$").Err(); err != nil {
		_ = client.Close()
		return nil, err
	}
	readCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for i := range r.C {
		consumer := "busbench-" + strconv.Itoa(i+1)
		wg.Go(func() {
			for readCtx.Err() == nil {
				streams, err := client.XReadGroup(readCtx, &redis.XReadGroupArgs{
					Group: n.handler, Consumer: consumer, Streams: []string{n.topic, ">"},
					Count: 100, Block: cfg.BlockTime,
				}).Result()
				if err != nil {
					continue // redis.Nil when idle; the context ends the loop
				}
				for _, s := range streams {
					ids := make([]string, 0, len(s.Messages))
					for _, m := range s.Messages {
						body, _ := m.Values["payload"].(string)
						rec.record(sentOf(body))
						ids = append(ids, m.ID)
					}
					if len(ids) > 0 {
						_ = client.XAck(readCtx, n.topic, n.handler, ids...).Err()
					}
				}
			}
		})
	}
	return &target{
		publish: func(ctx context.Context, _, k int, sent int64) error {
			pipe := client.Pipeline()
			for range k {
				pipe.XAdd(ctx, &redis.XAddArgs{
					Stream: n.topic, MaxLen: cfg.MaxLen, Approx: true,
					Values: []any{"payload", appendBody(make([]byte, 0, r.Payload), r.Payload, sent)},
				})
			}
			_, err := pipe.Exec(ctx)
			return err
		},
		// A pipeline of 64 entries per round trip.
		batch: 64,
		close: func() error {
			cancel()
			wg.Wait()
			return errors.Join(cleanupBroker(e, r.Adapter, n.topic, nil), client.Close())
		},
	}, nil
}
