package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/bus"
)

// The bare Watermill rows use the adapter's publisher and subscriber with
// the settings platform/bus gives them (gochannel.go, amqp.go,
// redisstream.go there), c subscriptions for concurrency c, and no router,
// middleware or decoding. Messages are built by bus.NewMessage, so they
// carry the same envelope as the bus's.

// setupWatermill builds the bare Watermill row of r.Adapter.
func setupWatermill(ctx context.Context, e *env, r row, rec *recorder) (*target, error) {
	n := e.names(r.Kind)
	topic := bus.NewTopic[event](n.topic, 1)
	var (
		pub  message.Publisher
		subs []message.Subscriber
		// conns are closed after the publisher and subscribers.
		conns []func() error
		// ack hands a message over: the subscriber loop acks it after the
		// handler ran, except on gochannel (see below).
		handoff bool
	)
	closeAll := func() error {
		var errs []error
		if pub != nil {
			errs = append(errs, pub.Close())
		}
		for _, s := range subs {
			errs = append(errs, s.Close())
		}
		for _, c := range conns {
			errs = append(errs, c())
		}
		return errors.Join(append(errs, cleanupBroker(e, r.Adapter, n.topic, []string{n.handler}))...)
	}
	fail := func(err error) (*target, error) { return nil, errors.Join(err, closeAll()) }
	logger := watermill.NopLogger{}

	switch r.Adapter {
	case bus.AdapterGoChannel:
		// One subscription, whose messages a pool of c workers handles: the
		// subscription acks a message once a worker took it, as the bus's
		// pool does, or gochannel would wait for each handler in turn.
		ch := gochannel.NewGoChannel(gochannel.Config{
			OutputChannelBuffer:            int64(busConfig(e, r.Adapter).GoChannel.QueueSize),
			BlockPublishUntilSubscriberAck: true,
		}, logger)
		pub, subs, handoff = ch, []message.Subscriber{ch}, true
	case bus.AdapterAMQP:
		cfg := busConfig(e, r.Adapter).AMQP
		conn := amqp.ConnectionConfig{AmqpURI: cfg.URL, Reconnect: amqp.DefaultReconnectConfig()}
		pubConn, err := amqp.NewConnection(conn, logger)
		if err != nil {
			return fail(err)
		}
		conns = append(conns, pubConn.Close)
		subConn, err := amqp.NewConnection(conn, logger)
		if err != nil {
			return fail(err)
		}
		conns = append(conns, subConn.Close)
		topology := amqpTopology(cfg.Exchange, n.handler, cfg.PublishChannels, max(1, cfg.Prefetch/r.C))
		if pub, err = amqp.NewPublisherWithConnection(topology, logger, pubConn); err != nil {
			return fail(err)
		}
		for range r.C {
			s, err := amqp.NewSubscriberWithConnection(topology, logger, subConn)
			if err != nil {
				return fail(err)
			}
			subs = append(subs, s)
		}
	case bus.AdapterRedisStream:
		cfg := busConfig(e, r.Adapter).Redis
		var err error
		pub, err = redisstream.NewPublisher(redisstream.PublisherConfig{
			Client:        redis.NewClient(&redis.Options{Addr: cfg.Addr}),
			DefaultMaxlen: cfg.MaxLen,
		}, logger)
		if err != nil {
			return fail(err)
		}
		for i := range r.C {
			s, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
				Client:                        redis.NewClient(&redis.Options{Addr: cfg.Addr}),
				Consumer:                      "busbench-" + strconv.Itoa(i+1),
				ConsumerGroup:                 n.handler,
				ClaimInterval:                 cfg.ClaimInterval,
				MaxIdleTime:                   cfg.MaxIdleTime,
				BlockTime:                     cfg.BlockTime,
				OldestId:                      "$",
				DisableIndefiniteInitialBlock: true,
			}, logger)
			if err != nil {
				return fail(err)
			}
			subs = append(subs, s)
		}
	case bus.AdapterNATS:
		p, s, closeConn, err := watermillNATS(e, r, n)
		if err != nil {
			return fail(err)
		}
		pub, subs, conns = p, []message.Subscriber{s}, append(conns, closeConn)
	default:
		return nil, fmt.Errorf("no bare Watermill row on %s", r.Adapter)
	}

	var wg sync.WaitGroup
	subCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	for _, s := range subs {
		msgs, err := s.Subscribe(subCtx, topic.Name())
		if err != nil {
			cancel()
			return fail(err)
		}
		if !handoff {
			wg.Go(func() {
				for msg := range msgs {
					rec.record(sentOf(msg.Payload))
					msg.Ack()
				}
			})
			continue
		}
		work := make(chan *message.Message)
		wg.Go(func() {
			defer close(work)
			for msg := range msgs {
				select {
				case work <- msg:
					msg.Ack()
				case <-subCtx.Done():
					return
				}
			}
		})
		for range r.C {
			wg.Go(func() {
				for msg := range work {
					rec.record(sentOf(msg.Payload))
				}
			})
		}
	}
	return &target{
		publish: func(ctx context.Context, first, k int, sent int64) error {
			return publishEvents(ctx, pub, topic, r.Payload, first, k, sent)
		},
		close: func() error {
			cancel()
			err := closeAll()
			wg.Wait()
			return err
		},
	}, nil
}

// amqpTopology is the bus's AMQP topology (platform/bus/amqp.go): one
// durable topic exchange, routing key = topic, a durable queue named after
// the handler, persistent messages, publisher confirms, a pool of
// publishing channels and the handler's share of the prefetch.
func amqpTopology(exchange, queue string, channels, prefetch int) amqp.Config {
	routingKey := func(topic string) string { return topic }
	return amqp.Config{
		Marshaler: amqp.DefaultMarshaler{},
		Exchange: amqp.ExchangeConfig{
			GenerateName: amqp.GenerateExchangeNameConstant(exchange),
			Type:         "topic",
			Durable:      true,
		},
		Queue:     amqp.QueueConfig{GenerateName: amqp.GenerateQueueNameConstant(queue), Durable: true},
		QueueBind: amqp.QueueBindConfig{GenerateRoutingKey: routingKey},
		Publish: amqp.PublishConfig{
			GenerateRoutingKey: routingKey,
			ChannelPoolSize:    channels,
			ConfirmDelivery:    true,
		},
		Consume:         amqp.ConsumeConfig{Qos: amqp.QosConfig{PrefetchCount: prefetch}},
		TopologyBuilder: &amqp.DefaultTopologyBuilder{},
	}
}

// setupRouter is the reference the bus is held to on gochannel: Watermill's
// own message.Router with middleware.Retry (the bus's retry settings) and
// middleware.Recoverer, on the bus's gochannel settings, with a handler that
// decodes the JSON payload, as any handler must. No bus.
func setupRouter(ctx context.Context, e *env, r row, rec *recorder) (*target, error) {
	if r.Adapter != bus.AdapterGoChannel {
		return nil, fmt.Errorf("the router row runs on gochannel only")
	}
	n := e.names(r.Kind)
	topic := bus.NewTopic[event](n.topic, 1)
	cfg := busConfig(e, r.Adapter)
	logger := watermill.NopLogger{}
	ch := gochannel.NewGoChannel(gochannel.Config{
		OutputChannelBuffer:            int64(cfg.GoChannel.QueueSize),
		BlockPublishUntilSubscriberAck: true,
	}, logger)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, logger)
	if err != nil {
		return nil, err
	}
	router.AddMiddleware(
		// Outermost: a failing handler is retried with backoff.
		middleware.Retry{
			MaxRetries:      cfg.Retry.MaxRetries,
			InitialInterval: cfg.Retry.InitialInterval,
			Multiplier:      cfg.Retry.Multiplier,
			MaxInterval:     cfg.Retry.MaxInterval,
		}.Middleware,
		// Innermost: a panic becomes an error retry sees.
		middleware.Recoverer,
	)
	router.AddConsumerHandler(n.handler, topic.Name(), ch, func(msg *message.Message) error {
		var ev event
		if err := json.Unmarshal(msg.Payload, &ev); err != nil {
			return err
		}
		rec.record(ev.T)
		return nil
	})
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(context.WithoutCancel(ctx)) }()
	select {
	case <-router.Running():
	case err := <-runErr:
		return nil, errors.Join(err, ch.Close())
	case <-time.After(10 * time.Second):
		return nil, errors.Join(errors.New("router did not start"), router.Close(), ch.Close())
	}
	return &target{
		publish: func(ctx context.Context, first, k int, sent int64) error {
			return publishEvents(ctx, ch, topic, r.Payload, first, k, sent)
		},
		close: func() error {
			err := router.Close()
			return errors.Join(err, <-runErr, ch.Close())
		},
	}, nil
}
