package bus

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// redisStreamAdapter writes one stream per topic (stream name = topic name)
// and reads it with one consumer group per handler.
type redisStreamAdapter struct {
	cfg      RedisConfig
	tls      *tls.Config // nil: no TLS
	instance string
	logger   watermill.LoggerAdapter
	client   *redis.Client // the publisher's; subscribers open their own
	pub      *redisstream.Publisher
}

func newRedisStream(ctx context.Context, cfg Config, instance string, logger watermill.LoggerAdapter) (*redisStreamAdapter, error) {
	a := &redisStreamAdapter{cfg: cfg.Redis, instance: instance, logger: logger}
	if cfg.Redis.TLS.Enabled {
		var err error
		if a.tls, err = cfg.Redis.TLS.clientConfig(); err != nil {
			return nil, fmt.Errorf("bus.redisstream.tls.%w", err)
		}
	}
	a.client = a.newClient()
	ping := func() error { return a.client.Ping(ctx).Err() }
	if err := connectWithRetry(ctx, "redis "+cfg.Redis.Addr, cfg.ConnectTimeout, logger, ping); err != nil {
		_ = a.client.Close()
		return nil, err
	}
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{
		Client:        a.client,
		Marshaller:    safeRedisMarshaller{},
		DefaultMaxlen: cfg.Redis.MaxLen,
	}, logger)
	if err != nil {
		_ = a.client.Close()
		return nil, fmt.Errorf("redis publisher: %w", err)
	}
	a.pub = pub
	return a, nil
}

func (a *redisStreamAdapter) newClient() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: a.cfg.Addr, Password: a.cfg.Password, DB: a.cfg.DB, TLSConfig: a.tls})
}

func (a *redisStreamAdapter) publisher() message.Publisher { return a.pub }

func (a *redisStreamAdapter) subscriber(h Handler) (message.Subscriber, bool, error) {
	if h.pattern {
		return a.patternSubscriber(h)
	}
	if h.broadcast {
		// No group: this instance reads the stream on its own, in order, so
		// concurrency comes from a pool behind the one reader.
		sub, err := a.newSubscriber(h, a.instance)
		if err != nil || h.concurrency == 1 {
			return sub, true, err
		}
		return keyedPool{sub: sub, n: h.concurrency}, true, nil
	}
	if h.ordered {
		return nil, false, fmt.Errorf("handler %q is ordered, which redisstream cannot promise: a consumer group spreads entries over the consumers of every instance and has no single active consumer (use amqp, or drop bus.Ordered and run one instance with concurrency 1)", h.name)
	}
	// n consumers in the handler's group, each reading read_count entries
	// per round trip (see redisGroupSubscriber).
	consumers := redisConsumerNames(a.instance, h.concurrency)
	return newRedisGroupSubscriber(newRedisGroupClient(a.cfg, len(consumers), a.tls), a.cfg.GroupPrefix+h.name, consumers, a.cfg, a.logger), true, nil
}

// patternSubscriber reads, for a pattern handler, the stream of every
// declared topic its pattern matches, each as the handler of that one topic
// would (same group, same consumers).
func (a *redisStreamAdapter) patternSubscriber(h Handler) (message.Subscriber, bool, error) {
	topics := expandPattern(h.topic)
	if len(topics) == 0 {
		return nil, false, fmt.Errorf("handler %q: pattern %s matches no topic this binary declares, and redisstream reads the streams of declared topics only", h.name, h.topic)
	}
	subs := topicFanIn{subs: make(map[string]message.Subscriber, len(topics)), n: h.concurrency}
	for _, t := range topics {
		one := h
		one.topic, one.pattern = t, false
		sub, _, err := a.subscriber(one)
		if err != nil {
			_ = subs.Close()
			return nil, false, err
		}
		subs.subs[t] = sub
	}
	return subs, true, nil
}

// newSubscriber reads h's topic without a group, from the stream's end at
// subscription: h is broadcast.
func (a *redisStreamAdapter) newSubscriber(h Handler, consumer string) (message.Subscriber, error) {
	// The end is fixed now, not at the first read, so events published
	// between start-up and that read are not skipped.
	last, err := a.lastID(h.topic)
	if err != nil {
		return nil, err
	}
	cfg := redisstream.SubscriberConfig{
		Client:         a.newClient(), // closed by the subscriber
		Unmarshaller:   safeRedisMarshaller{},
		Consumer:       consumer,
		FanOutOldestId: last,
		BlockTime:      a.cfg.BlockTime,
		// Without it the first read blocks forever and Close cannot stop it.
		DisableIndefiniteInitialBlock: true,
	}
	sub, err := redisstream.NewSubscriber(cfg, a.logger)
	if err != nil {
		_ = cfg.Client.Close()
		return nil, fmt.Errorf("redis subscriber for %s: %w", h.name, err)
	}
	return sub, nil
}

// lastID is the id of the newest entry of stream, or "0" when it is empty.
func (a *redisStreamAdapter) lastID(stream string) (string, error) {
	entries, err := a.client.XRevRangeN(context.Background(), stream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("redis: read end of stream %s: %w", stream, err)
	}
	if len(entries) == 0 {
		return "0", nil
	}
	return entries[0].ID, nil
}

func (a *redisStreamAdapter) check(ctx context.Context) error {
	if err := a.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

func (a *redisStreamAdapter) close() error {
	// The publisher closes a.client.
	return a.pub.Close()
}

// safeRedisMarshaller never fails to unmarshal: watermill-redisstream's
// subscriber, which broadcast handlers still use, ends its read loop on the
// first unmarshal error, so one foreign entry in a stream would silently
// stop the handler. Such an entry is instead marked so the handler
// sends it to the poison topic.
type safeRedisMarshaller struct {
	redisstream.DefaultMarshallerUnmarshaller
}

func (m safeRedisMarshaller) Unmarshal(values map[string]any) (msg *message.Message, err error) {
	defer func() {
		// The default unmarshaller asserts field types and panics on others.
		if r := recover(); r != nil {
			msg, err = undecodableRedisEntry(values, fmt.Errorf("%v", r)), nil
		}
	}()
	msg, err = m.DefaultMarshallerUnmarshaller.Unmarshal(values)
	if err != nil {
		return undecodableRedisEntry(values, err), nil
	}
	return msg, nil
}

func undecodableRedisEntry(values map[string]any, cause error) *message.Message {
	payload, err := json.Marshal(values)
	if err != nil {
		payload = []byte(fmt.Sprint(values))
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set(metaUndecodable, "undecodable stream entry: "+cause.Error())
	return msg
}
