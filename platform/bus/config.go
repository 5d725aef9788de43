package bus

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Adapters the bus can run on, chosen by bus.adapter.
const (
	AdapterGoChannel   = "gochannel"
	AdapterAMQP        = "amqp"
	AdapterRedisStream = "redisstream"
	AdapterNATS        = "nats"
)

// Config is the bus section of the configuration file (keys under bus.).
type Config struct {
	// Adapter is gochannel (in-process), amqp (RabbitMQ), redisstream or
	// nats (NATS JetStream).
	Adapter string `yaml:"adapter"`
	// PoisonTopic receives messages a handler cannot process.
	PoisonTopic string `yaml:"poison_topic"`
	// HandlerTimeout bounds each handler attempt unless the handler sets its own.
	HandlerTimeout time.Duration `yaml:"handler_timeout"`
	// CloseTimeout is how long Close waits for in-flight handlers.
	CloseTimeout time.Duration `yaml:"close_timeout"`
	// ConnectTimeout is how long start-up keeps retrying an unreachable broker.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// PublishTimeout is how long a publish keeps retrying while the broker
	// connection is down.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// Concurrency is how many events each handler handles at once per
	// instance, unless the handler or its entry in Handlers says otherwise.
	Concurrency int `yaml:"concurrency"`
	// Handlers tunes handlers by name, overriding what their code sets.
	Handlers map[string]HandlerConfig `yaml:"handlers"`
	// Bridges publish the events of some topics again on other brokers,
	// by name (docs/bus.md, "Bridges").
	Bridges map[string]BridgeConfig `yaml:"bridges"`

	Retry     RetryConfig     `yaml:"retry"`
	GoChannel GoChannelConfig `yaml:"gochannel"`
	AMQP      AMQPConfig      `yaml:"amqp"`
	Redis     RedisConfig     `yaml:"redisstream"`
	NATS      NATSConfig      `yaml:"nats"`
}

// HandlerConfig is one entry of bus.handlers.
type HandlerConfig struct {
	// Concurrency is how many events the handler handles at once per instance.
	Concurrency int `yaml:"concurrency"`
}

// RetryConfig is the exponential backoff applied to a failing handler.
type RetryConfig struct {
	MaxRetries      int           `yaml:"max_retries"`
	InitialInterval time.Duration `yaml:"initial_interval"`
	Multiplier      float64       `yaml:"multiplier"`
	MaxInterval     time.Duration `yaml:"max_interval"`
	// RescheduleBeyond is the longest backoff a handler waits for in its
	// consumer; a longer one is rescheduled (see RetryAfter). 0: never.
	RescheduleBeyond time.Duration `yaml:"reschedule_beyond"`
}

// GoChannelConfig configures the in-process adapter.
type GoChannelConfig struct {
	// QueueSize is how many events a handler may have queued, not yet
	// handled, before Publish blocks: memory stays bounded under a flood.
	QueueSize int `yaml:"queue_size"`
}

// Queue types of bus.amqp.queue_type.
const (
	QueueClassic = "classic"
	QueueQuorum  = "quorum"
)

// AMQPConfig configures RabbitMQ: one durable topic exchange, routing key =
// topic name, one queue per handler.
type AMQPConfig struct {
	URL      string `yaml:"url"`
	Exchange string `yaml:"exchange"`
	// Prefetch is how many unacknowledged deliveries a handler holds per
	// instance, split between its consumers (at least one each).
	Prefetch int `yaml:"prefetch"`
	// Durable declares the exchange and handler queues durable and publishes
	// persistent messages, so they survive a broker restart.
	Durable bool `yaml:"durable"`
	// PublishChannels is the size of the publisher's channel pool: a
	// Publish holds a channel until RabbitMQ confirms its event.
	PublishChannels int `yaml:"publish_channels"`
	// QueueType is the type of the handlers' queues: classic, or quorum
	// (replicated across a RabbitMQ cluster's nodes). A broadcast
	// handler's private queue stays classic.
	QueueType string `yaml:"queue_type"`
	// DeliveryLimit is how many times a quorum queue delivers a message
	// before it dead-letters it to the poison topic (a handler that crashes
	// its process on it, again and again); 0: no limit.
	DeliveryLimit int `yaml:"delivery_limit"`
	// TLS configures an amqps:// connection: the authorities to trust and
	// a client certificate.
	TLS TLSConfig `yaml:"tls"`
}

// NATSConfig configures NATS JetStream: one stream holds every topic, each
// handler has a durable consumer.
type NATSConfig struct {
	URL string `yaml:"url"`
	// Stream is the JetStream stream of every topic, created if missing.
	Stream string `yaml:"stream"`
	// SubjectPrefix: topic t is published on the subject <prefix>.<t>.
	SubjectPrefix string `yaml:"subject_prefix"`
	// Prefetch is how many deliveries a handler's consumer has unacked at
	// most, across its instances (max_ack_pending); at least twice the
	// handler's concurrency.
	Prefetch int `yaml:"prefetch"`
	// AckWait is how long a delivery stays unacked before JetStream
	// delivers it again: after a crash, and for a handler still retrying.
	AckWait time.Duration `yaml:"ack_wait"`
	// Replicas of the stream, when the bus creates it on a cluster.
	Replicas int `yaml:"replicas"`
}

// RedisConfig configures Redis Streams: one stream per topic, one consumer
// group per handler.
type RedisConfig struct {
	Addr     string `yaml:"addr"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
	// GroupPrefix is prepended to handler names to form consumer group names.
	GroupPrefix string `yaml:"group_prefix"`
	// MaxLen caps each stream (XADD MAXLEN ~); 0 keeps every entry.
	MaxLen int64 `yaml:"max_len"`
	// ClaimInterval is how often pending entries of dead consumers are looked for.
	ClaimInterval time.Duration `yaml:"claim_interval"`
	// MaxIdleTime is how long an entry stays pending before another consumer claims it.
	MaxIdleTime time.Duration `yaml:"max_idle_time"`
	// BlockTime is how long one read waits for new entries.
	BlockTime time.Duration `yaml:"block_time"`
	// ReadCount is how many entries a handler's consumers in one instance
	// read ahead, split evenly between them: each reads read_count/n (at
	// least 1) per round trip (XREADGROUP COUNT); their XACKs go out together.
	ReadCount int `yaml:"read_count"`
	// TLS, when enabled, connects to Redis with TLS.
	TLS TLSConfig `yaml:"tls"`
}

// DefaultConfig is the zero-setup configuration: in-process gochannel.
func DefaultConfig() Config {
	return Config{
		Adapter:        AdapterGoChannel,
		PoisonTopic:    "platform.message.poisoned",
		HandlerTimeout: 30 * time.Second,
		CloseTimeout:   30 * time.Second,
		ConnectTimeout: 30 * time.Second,
		PublishTimeout: 10 * time.Second,
		Concurrency:    1,
		Retry: RetryConfig{
			MaxRetries:      5,
			InitialInterval: 100 * time.Millisecond,
			Multiplier:      2,
			MaxInterval:     10 * time.Second,
		},
		GoChannel: GoChannelConfig{QueueSize: 1024},
		AMQP: AMQPConfig{ //nolint:gosec // G101: the URL is RabbitMQ's stock local account, the default for a local broker
			URL:             "amqp://guest:guest@127.0.0.1:5672/",
			Exchange:        "app.events",
			Prefetch:        16,
			Durable:         true,
			PublishChannels: 8,
			QueueType:       QueueClassic,
		},
		Redis: RedisConfig{
			Addr:          "127.0.0.1:6379",
			GroupPrefix:   "",
			MaxLen:        1_000_000,
			ClaimInterval: 5 * time.Second,
			MaxIdleTime:   60 * time.Second,
			BlockTime:     100 * time.Millisecond,
			ReadCount:     64,
		},
		NATS: NATSConfig{
			URL:           "nats://127.0.0.1:4222",
			Stream:        "APP_EVENTS",
			SubjectPrefix: "events",
			Prefetch:      16,
			AckWait:       60 * time.Second,
			Replicas:      1,
		},
	}
}

// Validate reports every invalid key, named by its path in the file.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("bus.%s: "+format, append([]any{key}, args...)...))
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be > 0, got %s", d)
		}
	}
	validateBridges(c, bad)
	switch c.Adapter {
	case AdapterGoChannel:
		if c.GoChannel.QueueSize < 1 {
			bad("gochannel.queue_size", "must be >= 1, got %d", c.GoChannel.QueueSize)
		}
	case AdapterAMQP:
		if c.AMQP.URL == "" {
			bad("amqp.url", "required when bus.adapter is amqp")
		}
		if c.AMQP.Exchange == "" {
			bad("amqp.exchange", "required when bus.adapter is amqp")
		}
		if c.AMQP.Prefetch < 1 {
			bad("amqp.prefetch", "must be >= 1, got %d", c.AMQP.Prefetch)
		}
		if c.AMQP.PublishChannels < 1 {
			bad("amqp.publish_channels", "must be >= 1, got %d", c.AMQP.PublishChannels)
		}
		switch c.AMQP.QueueType {
		case QueueClassic:
			if c.AMQP.DeliveryLimit != 0 {
				bad("amqp.delivery_limit", "applies to quorum queues only (bus.amqp.queue_type: quorum), got %d", c.AMQP.DeliveryLimit)
			}
		case QueueQuorum:
			if !c.AMQP.Durable {
				bad("amqp.queue_type", "quorum queues are always durable: set bus.amqp.durable to true")
			}
		default:
			bad("amqp.queue_type", "unknown queue type %q (want %s or %s)", c.AMQP.QueueType, QueueClassic, QueueQuorum)
		}
		if c.AMQP.DeliveryLimit < 0 {
			bad("amqp.delivery_limit", "must be >= 0 (0: no limit), got %d", c.AMQP.DeliveryLimit)
		}
		validateAMQPTLS(c.AMQP, bad)
	case AdapterRedisStream:
		if c.Redis.Addr == "" {
			bad("redisstream.addr", "required when bus.adapter is redisstream")
		}
		if c.Redis.MaxLen < 0 {
			bad("redisstream.max_len", "must be >= 0, got %d", c.Redis.MaxLen)
		}
		positive("redisstream.claim_interval", c.Redis.ClaimInterval)
		positive("redisstream.max_idle_time", c.Redis.MaxIdleTime)
		positive("redisstream.block_time", c.Redis.BlockTime)
		if c.Redis.ReadCount < 1 {
			bad("redisstream.read_count", "must be >= 1, got %d", c.Redis.ReadCount)
		}
		validateRedisTLS(c.Redis, bad)
	case AdapterNATS:
		if c.NATS.URL == "" {
			bad("nats.url", "required when bus.adapter is nats")
		}
		if c.NATS.Stream == "" || strings.ContainsAny(c.NATS.Stream, ".*> ") {
			bad("nats.stream", "a JetStream stream name, without dots, wildcards or spaces, got %q", c.NATS.Stream)
		}
		if c.NATS.SubjectPrefix == "" || strings.ContainsAny(c.NATS.SubjectPrefix, "*> ") {
			bad("nats.subject_prefix", "a subject without wildcards or spaces, got %q", c.NATS.SubjectPrefix)
		}
		if c.NATS.Prefetch < 1 {
			bad("nats.prefetch", "must be >= 1, got %d", c.NATS.Prefetch)
		}
		positive("nats.ack_wait", c.NATS.AckWait)
		if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
			bad("nats.replicas", "must be 1 to 5, got %d", c.NATS.Replicas)
		}
	default:
		bad("adapter", "unknown adapter %q (want %s, %s, %s or %s)", c.Adapter, AdapterGoChannel, AdapterAMQP, AdapterRedisStream, AdapterNATS)
	}
	if c.PoisonTopic == "" {
		bad("poison_topic", "required")
	}
	positive("handler_timeout", c.HandlerTimeout)
	positive("close_timeout", c.CloseTimeout)
	positive("connect_timeout", c.ConnectTimeout)
	positive("publish_timeout", c.PublishTimeout)
	if c.Concurrency < 1 {
		bad("concurrency", "must be >= 1, got %d", c.Concurrency)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Handlers)) {
		if n := c.Handlers[name].Concurrency; n < 1 {
			bad("handlers."+name+".concurrency", "must be >= 1, got %d", n)
		}
	}
	if c.Retry.MaxRetries < 0 {
		bad("retry.max_retries", "must be >= 0, got %d", c.Retry.MaxRetries)
	}
	positive("retry.initial_interval", c.Retry.InitialInterval)
	positive("retry.max_interval", c.Retry.MaxInterval)
	if c.Retry.RescheduleBeyond < 0 {
		bad("retry.reschedule_beyond", "must be >= 0 (0 never reschedules), got %s", c.Retry.RescheduleBeyond)
	}
	if c.Retry.Multiplier < 1 {
		bad("retry.multiplier", "must be >= 1, got %g", c.Retry.Multiplier)
	}
	return errors.Join(errs...)
}

// ConcurrencyOf is how many events h handles at once per instance: its entry
// in bus.handlers, else its Concurrency option, else bus.concurrency. An
// ordered handler handles one at a time, whatever bus.concurrency says.
func (c Config) ConcurrencyOf(h Handler) (int, error) {
	hc, configured := c.Handlers[h.name]
	if h.ordered {
		if configured && hc.Concurrency > 1 {
			return 0, fmt.Errorf("bus.handlers.%s.concurrency: %d, but handler %s is ordered and handles one event at a time", h.name, hc.Concurrency, h.name)
		}
		if h.concurrency > 1 {
			return 0, fmt.Errorf("handler %q: Ordered() and Concurrency(%d) exclude each other: an ordered handler handles one event at a time", h.name, h.concurrency)
		}
		return 1, nil
	}
	switch {
	case configured:
		return hc.Concurrency, nil
	case h.concurrency > 0:
		return h.concurrency, nil
	default:
		return c.Concurrency, nil
	}
}
