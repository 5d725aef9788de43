package bus_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

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

func TestAMQPConformance(t *testing.T) {
	url := testenv.RequireAMQP(t)
	exchange := "conformance.events"
	config := func() bus.Config {
		cfg := bus.DefaultConfig()
		cfg.Adapter = bus.AdapterAMQP
		cfg.AMQP.URL = url
		cfg.AMQP.Exchange = exchange
		return cfg
	}
	withChannel := func(t testing.TB, fn func(*amqp091.Channel) error) {
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

func run(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}
