package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/example/monolith/platform/bus"
)

// natsTopology is the bus's NATS topology (platform/bus/nats.go) for one
// row: the run's stream, created if no bus row did yet, and a durable push
// consumer named after the handler, filtered on the row's subject,
// delivering to a queue group of its name, with the bus's ack settings and
// prefetch for concurrency c.
type natsTopology struct {
	stream, subject, durable string
}

func newNATSTopology(e *env, r row, n names, js nats.JetStreamContext) (natsTopology, error) {
	cfg := busConfig(e, bus.AdapterNATS).NATS
	t := natsTopology{stream: cfg.Stream, subject: cfg.SubjectPrefix + "." + n.topic, durable: strings.ReplaceAll(n.handler, ".", "_")}
	if _, err := js.StreamInfo(t.stream); errors.Is(err, nats.ErrStreamNotFound) {
		_, err = js.AddStream(&nats.StreamConfig{Name: t.stream, Subjects: []string{cfg.SubjectPrefix + ".>"}, Storage: nats.FileStorage, Replicas: cfg.Replicas})
		if err != nil {
			return t, fmt.Errorf("nats stream %s: %w", t.stream, err)
		}
	} else if err != nil {
		return t, fmt.Errorf("nats stream %s: %w", t.stream, err)
	}
	_, err := js.AddConsumer(t.stream, &nats.ConsumerConfig{
		Durable:        t.durable,
		DeliverSubject: "_deliver." + t.stream + "." + t.durable,
		DeliverGroup:   t.durable,
		DeliverPolicy:  nats.DeliverNewPolicy,
		FilterSubject:  t.subject,
		AckPolicy:      nats.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxAckPending:  max(cfg.Prefetch, 4*r.C),
	})
	if err != nil {
		return t, fmt.Errorf("nats consumer %s: %w", t.durable, err)
	}
	return t, nil
}

// watermillNATS is the bare Watermill row on NATS: watermill-nats's
// JetStream publisher (each publish waits for its ack) and one subscriber
// with c subscriptions bound to the handler's consumer, with watermill-
// nats's own header marshaler.
func watermillNATS(e *env, r row, n names) (message.Publisher, message.Subscriber, func() error, error) {
	conn, err := nats.Connect(e.natsURL)
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := conn.JetStream()
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	t, err := newNATSTopology(e, r, n, js)
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	logger := watermill.NopLogger{}
	pub, err := wmnats.NewPublisherWithNatsConn(conn, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
	}, logger)
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:              e.natsURL,
		Unmarshaler:      &wmnats.NATSMarshaler{},
		SubscribersCount: r.C,
		AckWaitTimeout:   busConfig(e, bus.AdapterNATS).NATS.AckWait,
		SubjectCalculator: func(string, string) *wmnats.SubjectDetail {
			return &wmnats.SubjectDetail{Primary: t.subject, QueueGroup: t.durable}
		},
		JetStream: wmnats.JetStreamConfig{
			AckAsync:          true,
			SubscribeOptions:  []nats.SubOpt{nats.ManualAck(), nats.Bind(t.stream, t.durable)},
			DurablePrefix:     t.durable,
			DurableCalculator: func(prefix, _ string) string { return prefix },
		},
	}, logger)
	if err != nil {
		_ = pub.Close()
		return nil, nil, nil, err
	}
	// The row publishes and subscribes to its topic; NATS has it under the
	// run's subject prefix.
	prefix := strings.TrimSuffix(t.subject, n.topic)
	return prefixedPublisher{pub, prefix}, prefixedSubscriber{sub, prefix}, func() error { conn.Close(); return nil }, nil
}

// prefixedPublisher and prefixedSubscriber put a subject prefix before
// the topics of a Watermill publisher and subscriber.
type prefixedPublisher struct {
	message.Publisher
	prefix string
}

func (p prefixedPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.Publisher.Publish(p.prefix+topic, msgs...)
}

type prefixedSubscriber struct {
	message.Subscriber
	prefix string
}

func (s prefixedSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.Subscriber.Subscribe(ctx, s.prefix+topic)
}

// natsWindow is how many publishes a raw NATS publisher has in flight
// before it waits, as amqpWindow is for AMQP.
const natsWindow = 256

// natsStallWait is how long a raw NATS publish waits for room in its window.
const natsStallWait = 30 * time.Second

// rawNATS publishes with nats.go's asynchronous JetStream publishes, a
// window of natsWindow per publishing goroutine, and consumes with c
// subscriptions in the handler's queue group, bound to its durable
// consumer, acking each message.
func rawNATS(e *env, r row, rec *recorder) (*target, error) {
	n := e.names(r.Kind)
	conn, err := nats.Connect(e.natsURL)
	if err != nil {
		return nil, err
	}
	closeAll := func() error {
		conn.Close()
		return cleanupBroker(e, r.Adapter, n.topic, []string{n.handler})
	}
	fail := func(err error) (*target, error) { return nil, errors.Join(err, closeAll()) }
	js, err := conn.JetStream()
	if err != nil {
		return fail(err)
	}
	t, err := newNATSTopology(e, r, n, js)
	if err != nil {
		return fail(err)
	}
	for range r.C {
		_, err := js.QueueSubscribe(t.subject, t.durable, func(m *nats.Msg) {
			rec.record(sentOf(m.Data))
			_ = m.Ack()
		}, nats.Bind(t.stream, t.durable), nats.ManualAck())
		if err != nil {
			return fail(err)
		}
	}

	// One JetStream context, with its own window, per publisher at most.
	var failed atomic.Pointer[error]
	onErr := nats.PublishAsyncErrHandler(func(_ nats.JetStream, _ *nats.Msg, err error) { failed.CompareAndSwap(nil, &err) })
	pool := newPublishPool(func() (nats.JetStreamContext, error) {
		return conn.JetStream(nats.PublishAsyncMaxPending(natsWindow), onErr)
	})
	return &target{
		publish: func(_ context.Context, _, k int, sent int64) error {
			p, err := pool.take()
			if err != nil {
				return err
			}
			defer pool.put(p)
			for range k {
				// A full window waits for acks, as the raw AMQP publisher
				// waits for its oldest confirm.
				if _, err := p.PublishAsync(t.subject, appendBody(make([]byte, 0, r.Payload), r.Payload, sent), nats.StallWait(natsStallWait)); err != nil {
					return err
				}
			}
			return nil
		},
		// Published means acked by JetStream: wait for every window.
		flush: func(ctx context.Context) error {
			for _, p := range pool.all() {
				select {
				case <-p.PublishAsyncComplete():
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if err := failed.Load(); err != nil {
				return fmt.Errorf("a JetStream publish failed: %w", *err)
			}
			return nil
		},
		close: closeAll,
	}, nil
}
