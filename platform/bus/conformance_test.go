package bus_test

import (
	"context"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/bus/bustest"
	"github.com/example/monolith/platform/testenv"
)

func TestGoChannelConformance(t *testing.T) {
	bustest.Run(t, bustest.Adapter{
		Config:                 bus.DefaultConfig,
		Ordered:                true,
		AggregateOrder:         true,
		OrderedHandlers:        true,
		PatternsBeyondDeclared: true,
	})
}

func TestAMQPConformance(t *testing.T) { amqpConformance(t, bus.QueueClassic) }

// TestAMQPQuorumConformance runs the suite with every handler's queue a
// quorum queue (a broadcast handler's private queue stays classic).
func TestAMQPQuorumConformance(t *testing.T) { amqpConformance(t, bus.QueueQuorum) }

func amqpConfig(url, queueType string) func() bus.Config {
	return func() bus.Config {
		cfg := bus.DefaultConfig()
		cfg.Adapter = bus.AdapterAMQP
		cfg.AMQP.URL = url
		cfg.AMQP.Exchange = "conformance.events"
		cfg.AMQP.QueueType = queueType
		return cfg
	}
}

// withChannel runs fn on a channel of a connection of its own.
func withChannel(t testing.TB, url string, fn func(*amqp091.Channel) error) {
	t.Helper()
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatalf("dial amqp: %v", err)
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("amqp channel: %v", err)
	}
	if err := fn(ch); err != nil {
		t.Fatal(err)
	}
}

func amqpConformance(t *testing.T, queueType string) {
	url := testenv.RequireAMQP(t)
	config := amqpConfig(url, queueType)
	exchange := config().AMQP.Exchange
	withChannel := func(t testing.TB, fn func(*amqp091.Channel) error) { withChannel(t, url, fn) }
	bustest.Run(t, bustest.Adapter{
		Config:                 config,
		Shared:                 true,
		Ordered:                true,
		OrderedHandlers:        true,
		PatternsBeyondDeclared: true,
		InjectRaw: func(t testing.TB, topic string, body []byte) {
			withChannel(t, func(ch *amqp091.Channel) error {
				// A non-string header, like the x-death a dead-letter adds.
				return ch.PublishWithContext(context.Background(), exchange, topic, false, false,
					amqp091.Publishing{Body: body, Headers: amqp091.Table{"x-count": int32(3)}})
			})
		},
		DropConnections: func(t testing.TB) { run(t, testenv.RabbitMQCtl("close_all_connections", "conformance test")) },
		Cleanup: func(_, handlers []string) {
			withChannel(t, func(ch *amqp091.Channel) error {
				for _, h := range handlers {
					if _, err := ch.QueueDelete(h, false, false, false); err != nil {
						return err
					}
				}
				return nil
			})
		},
	})
}

func TestRedisStreamConformance(t *testing.T) {
	addr := testenv.RequireRedis(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	bustest.Run(t, bustest.Adapter{
		Config: func() bus.Config {
			cfg := bus.DefaultConfig()
			cfg.Adapter = bus.AdapterRedisStream
			cfg.Redis.Addr = addr
			// Entries a broadcast reader or a killed consumer leaves pending
			// are claimed after max_idle_time, kept short here.
			cfg.Redis.MaxIdleTime, cfg.Redis.ClaimInterval = 2*time.Second, 250*time.Millisecond
			return cfg
		},
		Shared:  true,
		Ordered: true,
		InjectRaw: func(t testing.TB, topic string, body []byte) {
			if err := client.XAdd(context.Background(), &redis.XAddArgs{Stream: topic, Values: map[string]any{"junk": body}}).Err(); err != nil {
				t.Fatalf("xadd: %v", err)
			}
		},
		DropConnections: func(t testing.TB) {
			n, err := client.Do(context.Background(), "CLIENT", "KILL", "TYPE", "normal").Int()
			if err != nil || n == 0 {
				t.Fatalf("client kill: %d connections closed, %v", n, err)
			}
		},
		Cleanup: func(topics, _ []string) {
			if len(topics) > 0 {
				_ = client.Del(context.Background(), topics...).Err()
			}
		},
	})
}

func TestNATSConformance(t *testing.T) {
	url := testenv.RequireNATS(t)
	// The bus connects through a proxy: NATS has no command to drop its
	// clients' connections.
	proxy := testenv.NewProxy(t, strings.TrimPrefix(url, "nats://"))
	config := func() bus.Config {
		cfg := bus.DefaultConfig()
		cfg.Adapter = bus.AdapterNATS
		cfg.NATS.URL = "nats://" + proxy.Addr
		cfg.NATS.Stream, cfg.NATS.SubjectPrefix = "CONFORMANCE", "conftest"
		// A crashed consumer's deliveries come back after ack_wait.
		cfg.NATS.AckWait = 5 * time.Second
		return cfg
	}
	conn, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	js, err := conn.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	bustest.Run(t, bustest.Adapter{
		Config:                 config,
		Shared:                 true,
		Ordered:                true,
		OrderedHandlers:        true,
		PatternsBeyondDeclared: true,
		DropConnections: func(t testing.TB) {
			if n := proxy.Drop(); n == 0 {
				t.Fatal("no connection to drop")
			}
		},
		InjectRaw: func(t testing.TB, topic string, body []byte) {
			if _, err := js.Publish("conftest."+topic, body); err != nil {
				t.Fatalf("publish raw: %v", err)
			}
		},
		Cleanup: func(topics, handlers []string) {
			for _, h := range handlers {
				_ = js.DeleteConsumer("CONFORMANCE", strings.ReplaceAll(h, ".", "_"))
			}
			for _, topic := range topics {
				_ = js.PurgeStream("CONFORMANCE", &nats.StreamPurgeRequest{Subject: "conftest." + topic})
			}
		},
	})
}

func run(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}

// TestAMQPQuorumDeliveryLimit: on a quorum queue, a redelivered message
// carries RabbitMQ's integer x-delivery-count header, which the handler
// decodes like any header; and a message delivered bus.amqp.delivery_limit
// times without an ack (a consumer that dies on it, again and again) is
// dead-lettered to the poison topic, where the poison handler gets it
// naming its handler and topic, instead of being dropped.
func TestAMQPQuorumDeliveryLimit(t *testing.T) {
	url := testenv.RequireAMQP(t)
	id := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "-" + time.Now().Format("150405.000000")
	topic := bus.NewTopic[int]("quorumtest.t"+strings.NewReplacer(".", "", "-", "").Replace(id)+".happened", 1)
	name := "quorumtest.crashes-" + strings.NewReplacer(".", "").Replace(id)
	cfg := amqpConfig(url, bus.QueueQuorum)()
	cfg.PoisonTopic = topic.Name() + ".poisoned"
	cfg.AMQP.DeliveryLimit = 2
	t.Cleanup(func() {
		withChannel(t, url, func(ch *amqp091.Channel) error {
			for _, q := range []string{name, "quorumtest.poison-" + id} {
				if _, err := ch.QueueDelete(q, false, false, false); err != nil {
					return err
				}
			}
			return nil
		})
	})
	start := func(hs ...bus.Handler) *bus.Bus { return startBus(t, cfg, hs...) }
	poisoned := make(chan bus.PoisonedMessage, 1)
	poisonBus := start(bus.NewPoisonHandler("quorumtest.poison-"+id, func(_ context.Context, m bus.PoisonedMessage) error {
		poisoned <- m
		return nil
	}))
	handled := make(chan bus.Event[int], 1)
	handler := bus.NewHandler(name, topic, func(_ context.Context, e bus.Event[int]) error {
		handled <- e
		return nil
	})
	// The handler's quorum queue exists, with its delivery limit; the
	// handler is gone, as after a crash.
	_ = start(handler).Close()

	// nackAll takes the queue's deliveries of the event and requeues them,
	// as a consumer dying on it would, until most are seen or the queue
	// holds no more; it returns the x-delivery-count of each.
	nackAll := func(most int) []any {
		var counts []any
		withChannel(t, url, func(ch *amqp091.Channel) error {
			deliveries, err := ch.Consume(name, "", false, false, false, false, nil)
			if err != nil {
				return err
			}
			for len(counts) < most {
				select {
				case d := <-deliveries:
					counts = append(counts, d.Headers["x-delivery-count"])
					if err := d.Nack(false, true); err != nil {
						return err
					}
				case <-time.After(2 * time.Second):
					return nil
				}
			}
			return nil
		})
		return counts
	}

	if err := bus.Publish(context.Background(), poisonBus, topic, "a", 1); err != nil {
		t.Fatal(err)
	}
	if counts := nackAll(1); len(counts) != 1 {
		t.Fatalf("deliveries %v, want one", counts)
	}
	handlerBus := start(handler)
	select {
	case e := <-handled:
		if e.Payload != 1 {
			t.Fatalf("handled %+v", e)
		}
	case m := <-poisoned:
		t.Fatalf("the redelivered event, with its integer x-delivery-count, was poisoned: %s", m.Reason)
	case <-time.After(10 * time.Second):
		t.Fatal("the redelivered event was not handled")
	}
	if err := handlerBus.Close(); err != nil {
		t.Fatal(err)
	}

	// A second event, never acked: RabbitMQ gives up on it past the limit.
	if err := bus.Publish(context.Background(), poisonBus, topic, "b", 2); err != nil {
		t.Fatal(err)
	}
	counts := nackAll(10)
	if len(counts) < 2 || len(counts) > 3 {
		t.Fatalf("delivered %d times (x-delivery-count %v), want the delivery limit, 2, then dead-lettered", len(counts), counts)
	}
	if _, ok := counts[1].(int64); !ok {
		t.Fatalf("x-delivery-count of a redelivery is %T (%v), want RabbitMQ's integer", counts[1], counts[1])
	}
	select {
	case m := <-poisoned:
		if m.Handler != name || m.Topic != topic.Name() || !strings.Contains(m.Reason, "delivery_limit") || m.Metadata[bus.MetaAggregateID] != "b" {
			t.Fatalf("poisoned %+v, want handler %s, topic %s and the delivery limit as reason", m, name, topic.Name())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the message past its delivery limit never reached the poison topic")
	}
}

// startBus starts a bus on cfg with hs, logging warnings into the test's
// output, and closes it at the end of the test.
func startBus(t *testing.T, cfg bus.Config, hs ...bus.Handler) *bus.Bus {
	t.Helper()
	b, err := bus.New(context.Background(), cfg, bus.Options{Logger: slog.New(slog.NewTextHandler(testenv.Output(t), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Register(hs...); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}
