package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/example/monolith/platform/config"
)

// amqpAdapter publishes to one topic exchange with routing key = topic and
// gives each handler its own queue bound to its topic. Publishing and
// consuming use separate connections so broker flow control on publishers
// never stalls consumers.
type amqpAdapter struct {
	// inspecting is held while queue depths are read (amqpdepth.go).
	inspecting sync.Mutex

	cfg         AMQPConfig
	poisonTopic string
	instance    string
	logger      watermill.LoggerAdapter
	pubConn     *amqp.ConnectionWrapper
	subConn     *amqp.ConnectionWrapper
	pub         *renewingAMQPPublisher
	batcher     amqpBatcher // PublishBatch's channel on pubConn
}

func newAMQP(ctx context.Context, cfg Config, instance string, logger watermill.LoggerAdapter) (*amqpAdapter, error) {
	a := &amqpAdapter{cfg: cfg.AMQP, poisonTopic: cfg.PoisonTopic, instance: instance, logger: logger}
	reconnect := amqp.DefaultReconnectConfig()
	// The default grows to 60s between attempts: a broker back after a
	// restart would then wait up to a minute for its clients.
	reconnect.BackoffMaxInterval = 5 * time.Second
	tlsConfig, err := amqpTLS(cfg.AMQP)
	if err != nil {
		return nil, fmt.Errorf("bus.amqp.tls.%w", err)
	}
	conn := amqp.ConnectionConfig{AmqpURI: cfg.AMQP.URL, TLSConfig: tlsConfig, Reconnect: reconnect}
	dial := func() (err error) {
		if a.pubConn == nil {
			if a.pubConn, err = amqp.NewConnection(conn, logger); err != nil {
				return err
			}
		}
		a.subConn, err = amqp.NewConnection(conn, logger)
		return err
	}
	if err := connectWithRetry(ctx, "amqp "+config.Redact(cfg.AMQP.URL), cfg.ConnectTimeout, logger, dial); err != nil {
		if a.pubConn != nil {
			_ = a.pubConn.Close()
		}
		return nil, err
	}
	a.pub = &renewingAMQPPublisher{config: a.config(Handler{}), conn: a.pubConn, logger: logger}
	if _, err := a.pub.current(); err != nil {
		_ = a.close()
		return nil, fmt.Errorf("amqp publisher: %w", err)
	}
	return a, nil
}

// config is the topology for h; the zero Handler gives the publisher's.
func (a *amqpAdapter) config(h Handler) amqp.Config {
	routingKey := func(topic string) string { return topic }
	queue := amqp.QueueConfig{GenerateName: amqp.GenerateQueueNameConstant(h.name), Durable: a.cfg.Durable, Arguments: amqp091.Table{}}
	if h.ordered {
		// RabbitMQ delivers to one consumer of the queue at a time, across
		// instances, and fails over to another when it goes away.
		queue.Arguments["x-single-active-consumer"] = true
	}
	if a.cfg.QueueType == QueueQuorum {
		queue.Arguments["x-queue-type"] = QueueQuorum
		if a.cfg.DeliveryLimit > 0 && !h.poison {
			// (A poison handler's queue has no limit: its messages would
			// be dead-lettered to itself.)
			// Past the limit the message goes to the poison topic, where
			// the poison store keeps it, instead of being dropped.
			queue.Arguments["x-delivery-limit"] = a.cfg.DeliveryLimit
			queue.Arguments["x-dead-letter-exchange"] = a.cfg.Exchange
			queue.Arguments["x-dead-letter-routing-key"] = a.poisonTopic
		}
	}
	if h.broadcast {
		// One private queue per instance, gone when the instance disconnects.
		queue = amqp.QueueConfig{
			GenerateName: amqp.GenerateQueueNameConstant(h.name + "." + a.instance),
			AutoDelete:   true,
			Exclusive:    true,
		}
	}
	return amqp.Config{
		Marshaler: safeAMQPMarshaler{amqp.DefaultMarshaler{NotPersistentDeliveryMode: !a.cfg.Durable}},
		Exchange: amqp.ExchangeConfig{
			GenerateName: amqp.GenerateExchangeNameConstant(a.cfg.Exchange),
			Type:         "topic",
			Durable:      a.cfg.Durable,
		},
		Queue:     queue,
		QueueBind: amqp.QueueBindConfig{GenerateRoutingKey: routingKey},
		Publish: amqp.PublishConfig{
			GenerateRoutingKey: routingKey,
			ChannelPoolSize:    a.cfg.PublishChannels,
			// A nil error from Publish then means the broker has the message.
			ConfirmDelivery: true,
		},
		Consume:         amqp.ConsumeConfig{Qos: amqp.QosConfig{PrefetchCount: a.prefetch(h)}},
		TopologyBuilder: &amqpTopology{},
	}
}

// prefetch splits bus.amqp.prefetch between h's consumers, so concurrency
// does not multiply what one instance holds back from the others. Each still
// holds two, so its next delivery is there when it acks instead of one round
// trip later; an ordered handler's consumer holds one, so a delivery it nacks
// is redelivered before the next.
func (a *amqpAdapter) prefetch(h Handler) int {
	if h.ordered {
		return 1
	}
	return max(2, a.cfg.Prefetch/max(1, h.concurrency))
}

func (a *amqpAdapter) publisher() message.Publisher { return a.pub }

func (a *amqpAdapter) subscriber(h Handler) (message.Subscriber, bool, error) {
	// n consumers of the handler's queue, each on its own channel; each
	// handles one delivery at a time.
	subs := make(fanIn, 0, h.concurrency)
	for range h.concurrency {
		sub, err := amqp.NewSubscriberWithConnection(a.config(h), a.logger, a.subConn)
		if err != nil {
			_ = subs.Close()
			return nil, false, fmt.Errorf("amqp subscriber for %s: %w", h.name, err)
		}
		subs = append(subs, sub)
	}
	if len(subs) == 1 {
		return subs[0], true, nil
	}
	return subs, true, nil
}

func (a *amqpAdapter) check(context.Context) error {
	if !a.pubConn.IsConnected() || !a.subConn.IsConnected() {
		return errors.New("amqp: not connected to the broker")
	}
	return nil
}

func (a *amqpAdapter) close() error {
	var errs []error
	if a.pub != nil {
		errs = append(errs, a.pub.Close())
	}
	errs = append(errs, a.batcher.close())
	if a.subConn != nil {
		errs = append(errs, a.subConn.Close())
	}
	if a.pubConn != nil {
		errs = append(errs, a.pubConn.Close())
	}
	return errors.Join(errs...)
}

// amqpTopology declares what the default topology builder does, explaining
// the one declaration error a change of handler options causes.
type amqpTopology struct{ amqp.DefaultTopologyBuilder }

func (b *amqpTopology) BuildTopology(ch *amqp091.Channel, p amqp.BuildTopologyParams, cfg amqp.Config, logger watermill.LoggerAdapter) error {
	err := b.DefaultTopologyBuilder.BuildTopology(ch, p, cfg, logger)
	if amqpErr, ok := errors.AsType[*amqp091.Error](err); ok && amqpErr.Code == amqp091.PreconditionFailed {
		// RabbitMQ never changes the arguments of an existing queue; adding
		// or removing bus.Ordered changes x-single-active-consumer.
		return fmt.Errorf("queue %s exists with other arguments than its handler declares (bus.Ordered adds x-single-active-consumer; bus.amqp.queue_type and delivery_limit set x-queue-type, x-delivery-limit and its dead-letter target): stop the handler's instances, let the queue drain, delete it (rabbitmqctl delete_queue %s) and start again: %w",
			p.QueueName, p.QueueName, err)
	}
	return err
}

// safeAMQPMarshaler never fails to unmarshal: a delivery the default
// marshaler rejects would be nacked and redelivered forever (watermill-amqp
// #65, #184). Non-string headers (x-death after a dead-letter, or anything
// another program sets) become strings; what still fails is marked so the
// handler sends it to the poison topic.
type safeAMQPMarshaler struct{ amqp.DefaultMarshaler }

func (m safeAMQPMarshaler) Unmarshal(d amqp091.Delivery) (*message.Message, error) {
	headers := make(amqp091.Table, len(d.Headers))
	for k, v := range d.Headers {
		if s, ok := v.(string); ok {
			headers[k] = s
		} else if k != amqp.DefaultMessageUUIDHeaderKey {
			headers[k] = fmt.Sprint(v)
		}
	}
	d.Headers = headers
	msg, err := m.DefaultMarshaler.Unmarshal(d)
	if err != nil {
		msg = message.NewMessage(watermill.NewUUID(), d.Body)
		msg.Metadata.Set(metaUndecodable, err.Error())
	}
	if msg.UUID == "" {
		msg.UUID = watermill.NewUUID()
	}
	return msg, nil
}

// renewingAMQPPublisher replaces its Watermill publisher after a failed
// publish. The pooled channel provider of watermill-amqp v3.1.0 drops a
// channel from its pool when reopening it fails during a reconnect, so the
// pool shrinks with every outage until Publish blocks forever, and closing
// the publisher then panics on the channel it could not reopen. A fresh
// publisher opens a full pool on the current connection.
type renewingAMQPPublisher struct {
	config amqp.Config
	conn   *amqp.ConnectionWrapper
	logger watermill.LoggerAdapter

	mu     sync.Mutex
	pub    *amqp.Publisher // nil after a failure, until the next publish
	closed bool
}

func (p *renewingAMQPPublisher) Publish(topic string, msgs ...*message.Message) error {
	pub, err := p.current()
	if err != nil {
		return err
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		p.discard(pub)
		return err
	}
	return nil
}

// current returns the publisher, opening a new one if the last one failed.
func (p *renewingAMQPPublisher) current() (*amqp.Publisher, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("amqp publisher closed")
	}
	if p.pub == nil {
		pub, err := amqp.NewPublisherWithConnection(p.config, p.logger, p.conn)
		if err != nil {
			return nil, err
		}
		p.pub = pub
	}
	return p.pub, nil
}

// discard closes pub unless it was already replaced; publishes waiting for
// one of its channels then fail and are retried on the next publisher.
func (p *renewingAMQPPublisher) discard(pub *amqp.Publisher) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pub == pub {
		p.pub = nil
		closeAMQPPublisher(pub)
	}
}

func (p *renewingAMQPPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.pub != nil {
		closeAMQPPublisher(p.pub)
		p.pub = nil
	}
	return nil
}

// closeAMQPPublisher closes pub, surviving the nil channel a failed reopen
// leaves in its pool (see renewingAMQPPublisher). Pool channels after that
// one are left to their connection: dropped with it by the broker, or closed
// with it when the bus closes.
func closeAMQPPublisher(pub *amqp.Publisher) {
	defer func() { _ = recover() }()
	_ = pub.Close()
}
