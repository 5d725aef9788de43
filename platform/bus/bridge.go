package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// BridgeConfig is one entry of bus.bridges: the events of Topics, as this
// bus receives them, published again on another broker.
type BridgeConfig struct {
	// Topics is a topic name or a pattern (see [Match]).
	Topics string `yaml:"topics"`
	// Adapter is the other broker's: amqp, redisstream or nats.
	Adapter string `yaml:"adapter"`
	// URL is the other RabbitMQ's (amqp) or NATS's (nats).
	URL string `yaml:"url"`
	// Exchange is the other RabbitMQ's exchange; empty: bus.amqp.exchange.
	Exchange string `yaml:"exchange"`
	// Addr, Password and DB reach the other Redis (redisstream).
	Addr     string `yaml:"addr"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
}

// bridgeName is the key of a bus.bridges entry; the bridge's handler is
// bridge.<name>.
var bridgeName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// metaBridgedBy is set on the copy a bridge publishes: the bridge's name. A
// bridge does not forward what a bridge brought in, so two clusters
// bridged both ways do not send events back and forth.
const metaBridgedBy = "bridged_by"

func validateBridges(c Config, bad func(key, format string, args ...any)) {
	for _, name := range slices.Sorted(maps.Keys(c.Bridges)) {
		b, key := c.Bridges[name], "bridges."+name
		if !bridgeName.MatchString(name) {
			bad(key, "a bridge name is lower-case letters, digits, - and _")
		}
		if b.Topics == "" || (IsPattern(b.Topics) && !patternSyntax.MatchString(b.Topics)) || (!IsPattern(b.Topics) && !topicName.MatchString(b.Topics)) {
			bad(key+".topics", "want a topic name or a pattern (identity.#, *.*.created), got %q", b.Topics)
		}
		switch b.Adapter {
		case AdapterAMQP:
			if b.URL == "" {
				bad(key+".url", "required for an amqp bridge")
			}
		case AdapterRedisStream:
			if b.Addr == "" {
				bad(key+".addr", "required for a redisstream bridge")
			}
		case AdapterNATS:
			if b.URL == "" {
				bad(key+".url", "required for a nats bridge")
			}
		default:
			bad(key+".adapter", "want %s, %s or %s, got %q", AdapterAMQP, AdapterRedisStream, AdapterNATS, b.Adapter)
		}
	}
}

// target is the configuration of the bridge's broker: this bus's, pointed
// at the other one.
func (b BridgeConfig) target(local Config) Config {
	cfg := local
	cfg.Adapter = b.Adapter
	cfg.Bridges = nil
	switch b.Adapter {
	case AdapterAMQP:
		cfg.AMQP.URL, cfg.AMQP.Exchange, cfg.AMQP.TLS = b.URL, cmp.Or(b.Exchange, local.AMQP.Exchange), TLSConfig{}
	case AdapterRedisStream:
		cfg.Redis.Addr, cfg.Redis.Password, cfg.Redis.DB, cfg.Redis.TLS = b.Addr, b.Password, b.DB, TLSConfig{}
	case AdapterNATS:
		cfg.NATS.URL = b.URL
	}
	return cfg
}

// bridge is a bridge's connection to the other broker and its handler.
type bridge struct {
	adapter adapter
	handler Handler
}

// newBridges connects to the brokers of cfg.Bridges.
func newBridges(ctx context.Context, cfg Config, instance string, logger *slog.Logger, wmLogger watermill.LoggerAdapter) ([]bridge, error) {
	var out []bridge
	for _, name := range slices.Sorted(maps.Keys(cfg.Bridges)) {
		b := cfg.Bridges[name]
		target := b.target(cfg)
		a, err := newAdapter(ctx, target, instance, wmLogger)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("bus.bridges.%s: %w", name, err), closeBridges(out))
		}
		pub := retryingPublisher{a.publisher(), cfg.PublishTimeout}
		out = append(out, bridge{adapter: a, handler: bridgeHandler("bridge."+name, b.Topics, pub, logger)})
	}
	return out, nil
}

func closeBridges(bs []bridge) error {
	var errs []error
	for _, b := range bs {
		errs = append(errs, b.adapter.close())
	}
	return errors.Join(errs...)
}

// bridgeHandler publishes what it receives of topics (a topic or a
// pattern) to pub, with its metadata and id, once the other broker has it
// (AMQP's publisher confirm, Redis's XADD reply): only then is it acked
// here, so a connection dropped on either side delays events and loses
// none. Retries and poisoning are any handler's.
func bridgeHandler(name, topics string, pub message.Publisher, logger *slog.Logger) Handler {
	h := Handler{name: name, topic: topics, pattern: IsPattern(topics)}
	h.handle = func(_ *slog.Logger, msg *message.Message) error {
		if msg.Metadata.Get(metaBridgedBy) != "" {
			return nil // brought in by a bridge
		}
		topic := eventTopic(topics, msg)
		if IsPattern(topic) {
			return Permanent(fmt.Errorf("message %s has no event type to publish it under", msg.UUID))
		}
		out := message.NewMessage(msg.UUID, msg.Payload)
		out.Metadata = maps.Clone(msg.Metadata)
		delete(out.Metadata, MetaReplayFor)
		out.Metadata.Set(metaBridgedBy, name)
		out.SetContext(msg.Context())
		if err := pub.Publish(topic, out); err != nil {
			logger.WarnContext(msg.Context(), "Bridge could not publish to the other broker", "bridge", name, "topic", topic, "event_id", msg.UUID, "error", err)
			return fmt.Errorf("%s: publish %s to the other broker: %w", name, topic, err)
		}
		return nil
	}
	return h
}
