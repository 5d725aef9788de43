package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/bus"
)

// setup builds the system a row measures.
func setup(ctx context.Context, e *env, r row, rec *recorder) (*target, error) {
	switch r.Kind {
	case kindBus, kindCallers, kindFlood, kindTwo, kindSleep, kindFanout:
		return setupBus(ctx, e, r, rec)
	case kindWatermill:
		return setupWatermill(ctx, e, r, rec)
	case kindRouter:
		return setupRouter(ctx, e, r, rec)
	case kindRaw:
		return setupRaw(ctx, e, r, rec)
	case kindRelay, kindDelayed:
		return setupRelay(ctx, e, r, rec)
	case kindRealPath:
		return setupRealPath(ctx, e, r, rec)
	case kindCeiling:
		return setupCeiling(ctx, e, r, rec)
	}
	return nil, fmt.Errorf("no setup for row kind %q", r.Kind)
}

// busConfig is bus.DefaultConfig() tuned for adapter as configs/*.yaml tune
// it, pointed at this run's services.
func busConfig(e *env, adapter string) bus.Config {
	cfg := bus.DefaultConfig()
	cfg.Adapter = adapter
	switch adapter {
	case bus.AdapterAMQP: // configs/amqp.yaml
		cfg.AMQP.URL, cfg.AMQP.Exchange = e.amqpURL, e.exchange
		cfg.AMQP.Prefetch, cfg.AMQP.Durable = 16, true
	case bus.AdapterRedisStream: // configs/redisstream.yaml
		cfg.Redis.Addr, cfg.Redis.MaxLen = e.redisAddr, 1_000_000
	case bus.AdapterNATS: // configs/nats.yaml, on a stream of this run's
		cfg.NATS.URL, cfg.NATS.Prefetch = e.natsURL, 16
		cfg.NATS.Stream, cfg.NATS.SubjectPrefix = "BUSBENCH_"+strings.ToUpper(e.runID), "busbench_"+e.runID
	}
	// A row that failed must not hang the run on a dead broker.
	cfg.ConnectTimeout, cfg.CloseTimeout = 5*time.Second, 10*time.Second
	return cfg
}

// setupBus is the bus end to end: bus.Publish, the router with the whole
// middleware chain, a typed handler bus.NewHandler decodes for. The
// backlog rows' handlers wait for the gate, then 5 ms.
func setupBus(ctx context.Context, e *env, r row, rec *recorder) (*target, error) {
	n := e.names(r.Kind)
	topic := bus.NewTopic[event](n.topic, 1)
	handle := func(_ context.Context, ev bus.Event[event]) error {
		rec.record(ev.Payload.T)
		return nil
	}
	var open func()
	if r.Kind == kindSleep || r.Kind == kindFanout {
		gate := make(chan struct{})
		open = sync.OnceFunc(func() { close(gate) })
		handle = func(ctx context.Context, ev bus.Event[event]) error {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
			time.Sleep(5 * time.Millisecond)
			rec.record(ev.Payload.T)
			return nil
		}
	}
	handlers := []string{n.handler}
	if r.Kind == kindFanout {
		handlers = handlers[:0]
		for i := range 16 {
			handlers = append(handlers, fmt.Sprintf("%s-%d", n.handler, i+1))
		}
	}

	cfg := busConfig(e, r.Adapter)
	if r.Kind == kindCallers {
		// watermill-amqp holds a pooled channel until its publish is
		// confirmed: one per caller.
		cfg.AMQP.PublishChannels = callers
	}
	if open != nil {
		// A backlog row publishes every event before the gate opens; the
		// in-process queue, bounded so a flood blocks Publish, would block
		// the publishers the gate waits for.
		cfg.GoChannel.QueueSize = max(cfg.GoChannel.QueueSize, 1<<16)
	}
	var buses []*bus.Bus
	closeAll := func() error {
		if open != nil {
			open() // no handler left waiting at the gate
		}
		var errs []error
		for _, b := range buses {
			errs = append(errs, b.Close())
		}
		errs = append(errs, cleanupBroker(e, r.Adapter, n.topic, handlers))
		return errors.Join(errs...)
	}
	fail := func(err error) (*target, error) { return nil, errors.Join(err, closeAll()) }
	for k := range r.Instances {
		// Instances sharing the work differ only by name, as two processes.
		b, err := bus.New(ctx, cfg, bus.Options{Logger: quiet(), Instance: fmt.Sprintf("busbench-%s-%d", e.runID, k+1)})
		if err != nil {
			return fail(err)
		}
		buses = append(buses, b)
		for _, name := range handlers {
			if err := b.Register(bus.NewHandler(name, topic, handle, bus.Concurrency(r.C))); err != nil {
				return fail(err)
			}
		}
		if err := b.Start(ctx); err != nil {
			return fail(err)
		}
	}
	return &target{
		publish: func(ctx context.Context, first, k int, sent int64) error {
			b := buses[first%len(buses)] // publishers alternate between instances
			return publishEvents(ctx, b, topic, r.Payload, first, k, sent)
		},
		perEvent: len(handlers),
		open:     open,
		close:    closeAll,
	}, nil
}

// cleanupBroker deletes the queues (AMQP) or the stream and its groups
// (Redis) a row created.
func cleanupBroker(e *env, adapter, stream string, queues []string) error {
	switch adapter {
	case bus.AdapterAMQP:
		conn, err := amqp091.Dial(e.amqpURL)
		if err != nil {
			return fmt.Errorf("clean up queues: %w", err)
		}
		defer func() { _ = conn.Close() }()
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("clean up queues: %w", err)
		}
		for _, q := range queues {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				return fmt.Errorf("delete queue %s: %w", q, err)
			}
		}
		return ch.Close()
	case bus.AdapterRedisStream:
		c := redis.NewClient(&redis.Options{Addr: e.redisAddr})
		defer func() { _ = c.Close() }()
		if err := c.Del(context.Background(), stream).Err(); err != nil {
			return fmt.Errorf("delete stream %s: %w", stream, err)
		}
	case bus.AdapterNATS:
		// The run's stream goes once every row is done (deleteNATSStream);
		// the row's consumers go now.
		conn, err := nats.Connect(e.natsURL)
		if err != nil {
			return fmt.Errorf("clean up consumers: %w", err)
		}
		defer conn.Close()
		js, err := conn.JetStream()
		if err != nil {
			return err
		}
		for _, q := range queues {
			if err := js.DeleteConsumer(busConfig(e, bus.AdapterNATS).NATS.Stream, strings.ReplaceAll(q, ".", "_")); err != nil && !errors.Is(err, nats.ErrConsumerNotFound) {
				return fmt.Errorf("delete consumer %s: %w", q, err)
			}
		}
	}
	return nil
}

// deleteNATSStream removes this run's NATS stream once every row is done.
func (e *env) deleteNATSStream() error {
	if _, down := e.down[svcNATS]; down {
		return nil
	}
	conn, err := nats.Connect(e.natsURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	js, err := conn.JetStream()
	if err != nil {
		return err
	}
	if err := js.DeleteStream(busConfig(e, bus.AdapterNATS).NATS.Stream); err != nil && !errors.Is(err, nats.ErrStreamNotFound) {
		return err
	}
	return nil
}

// deleteExchange removes this run's AMQP exchange once every row is done.
func (e *env) deleteExchange() error {
	if _, down := e.down[svcRabbitMQ]; down {
		return nil
	}
	conn, err := amqp091.Dial(e.amqpURL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	return errors.Join(ch.ExchangeDelete(e.exchange, false, false), ch.Close())
}

// destination is a bus on adapter with one handler of topic, what the
// relay rows forward to.
func destination(ctx context.Context, e *env, adapter string, n names, h bus.Handler) (*bus.Bus, func() error, error) {
	b, err := bus.New(ctx, busConfig(e, adapter), bus.Options{Logger: quiet(), Instance: "busbench-" + e.runID})
	if err != nil {
		return nil, nil, err
	}
	closeAll := func() error {
		return errors.Join(b.Close(), cleanupBroker(e, adapter, n.topic, []string{n.handler}))
	}
	if err := b.Register(h); err != nil {
		return nil, nil, errors.Join(err, closeAll())
	}
	if err := b.Start(ctx); err != nil {
		return nil, nil, errors.Join(err, closeAll())
	}
	return b, closeAll, nil
}
