package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/testenv"
)

// The benchmarks publish b.N events from benchPublishers goroutines and wait
// until a handler has consumed them all, through the whole bus (router and
// middleware) and through the same adapter's bare Watermill publisher and
// subscriber, so the bus's overhead reads as a ratio of the two events/s.

const benchPublishers = 8

type benchPayload struct {
	ID    int    `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

func benchConfigs(b *testing.B) map[string]Config {
	gochannel := DefaultConfig()
	amqp := DefaultConfig()
	amqp.Adapter, amqp.AMQP.URL, amqp.AMQP.Exchange = AdapterAMQP, testenv.RequireAMQP(b), "bench.events"
	redis := DefaultConfig()
	redis.Adapter, redis.Redis.Addr = AdapterRedisStream, testenv.RequireRedis(b)
	return map[string]Config{AdapterGoChannel: gochannel, AdapterAMQP: amqp, AdapterRedisStream: redis}
}

func BenchmarkBus(b *testing.B) {
	for _, name := range []string{AdapterGoChannel, AdapterAMQP, AdapterRedisStream} {
		b.Run(name, func(b *testing.B) {
			cfg := benchConfigs(b)[name]
			topic := NewTopic[benchPayload](benchTopicName("run"), 1)
			bus, err := New(context.Background(), cfg, Options{Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = bus.Close() }()
			handler := "bench.consume-" + topic.Aggregate()
			b.Cleanup(func() { cleanupBroker(b, cfg, topic.Name(), handler) })
			var handled atomic.Int64
			done := make(chan struct{})
			target := int64(b.N)
			if err := bus.Register(NewHandler(handler, topic, func(context.Context, Event[benchPayload]) error {
				if handled.Add(1) == target {
					close(done)
				}
				return nil
			})); err != nil {
				b.Fatal(err)
			}
			if err := bus.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			publishAll(b, func(i int) error {
				return Publish(context.Background(), bus, topic, "bench", benchPayload{ID: i, Email: "user@example.com", Name: "Bench User"})
			})
			<-done
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

func BenchmarkRawWatermill(b *testing.B) {
	for _, name := range []string{AdapterGoChannel, AdapterAMQP, AdapterRedisStream} {
		b.Run(name, func(b *testing.B) {
			cfg := benchConfigs(b)[name]
			topic := NewTopic[benchPayload](benchTopicName("raw"), 1)
			a, err := newAdapter(context.Background(), cfg, "bench", watermill.NopLogger{})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = a.close() }()
			handler := "bench.raw-" + topic.Aggregate()
			b.Cleanup(func() { cleanupBroker(b, cfg, topic.Name(), handler) })
			sub, owned, err := a.subscriber(Handler{name: handler, topic: topic.Name(), concurrency: 1})
			if err != nil {
				b.Fatal(err)
			}
			if owned {
				defer func() { _ = sub.Close() }()
			}
			msgs, err := sub.Subscribe(context.Background(), topic.Name())
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				for range b.N {
					(<-msgs).Ack()
				}
				close(done)
			}()
			pub := a.publisher()
			b.ResetTimer()
			start := time.Now()
			publishAll(b, func(i int) error {
				msg, err := NewMessage(context.Background(), topic, "bench", benchPayload{ID: i, Email: "user@example.com", Name: "Bench User"})
				if err != nil {
					return err
				}
				return pub.Publish(topic.Name(), msg)
			})
			<-done
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

func publishAll(b *testing.B, publish func(i int) error) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range benchPublishers {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= b.N; i = int(next.Add(1)) {
				if err := publish(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func benchTopicName(kind string) string {
	return fmt.Sprintf("bench.%s%s.published", kind, strings.ToLower(watermill.NewShortUUID()[:6]))
}

// cleanupBroker removes the queue or stream a benchmark run created.
func cleanupBroker(b *testing.B, cfg Config, topic, handler string) {
	switch cfg.Adapter {
	case AdapterAMQP:
		conn, err := amqp091.Dial(cfg.AMQP.URL)
		if err != nil {
			b.Log(err)
			return
		}
		defer func() { _ = conn.Close() }()
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(handler, false, false, false)
		}
	case AdapterRedisStream:
		client := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr})
		defer func() { _ = client.Close() }()
		_ = client.Del(context.Background(), topic).Err()
	}
}

// BenchmarkPublishBatch publishes b.N events of one topic straight to the
// broker from one goroutine, 100 at a time: with one PublishBatch call (pipelined: one
// confirm wait on AMQP, one XADD pipeline on Redis) or a loop of Publish
// (a round trip each), into a durable queue or a stream that nothing
// consumes.
func BenchmarkPublishBatch(b *testing.B) {
	const perCall = 100
	for _, name := range []string{AdapterAMQP, AdapterRedisStream} {
		for _, mode := range []string{"batch", "loop"} {
			b.Run(name+"-"+mode, func(b *testing.B) {
				cfg := benchConfigs(b)[name]
				topic := NewTopic[benchPayload](benchTopicName("batch"), 1)
				if name == AdapterAMQP {
					// A durable queue takes them, so each is persisted before its confirm.
					cfg.AMQP.Exchange = "bench.batch-" + topic.Aggregate()
					testenv.AMQPQueue(b, cfg.AMQP.URL, cfg.AMQP.Exchange, []string{topic.Name()}, nil)
				}
				bus, err := New(context.Background(), cfg, Options{Logger: quiet()})
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = bus.Close() }()
				b.Cleanup(func() { cleanupBroker(b, cfg, topic.Name(), "") })
				items := make([]Item[benchPayload], perCall)
				for i := range items {
					items[i] = Item[benchPayload]{AggregateID: "bench", Payload: benchPayload{ID: i, Email: "user@example.com", Name: "Bench User"}}
				}
				ctx := context.Background()
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i += perCall { // b.N events
					call := items[:min(perCall, b.N-i)]
					if mode == "batch" {
						if err := PublishBatch(ctx, bus, topic, call); err != nil {
							b.Fatal(err)
						}
						continue
					}
					for _, it := range call {
						if err := Publish(ctx, bus, topic, it.AggregateID, it.Payload); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkAMQPDrain fills a durable queue with b.N events, then times one
// consumer draining it, prefetch 16, acking each: through the whole bus
// (handler concurrency 1), through the adapter's watermill-amqp subscriber
// alone, and through amqp091-go alone. The three read the same messages.
func BenchmarkAMQPDrain(b *testing.B) {
	drains := map[string]func(b *testing.B, cfg Config, topic Topic[benchPayload], queue string, count func()){
		"bus": func(b *testing.B, cfg Config, topic Topic[benchPayload], queue string, count func()) {
			consumer, err := New(context.Background(), cfg, Options{Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = consumer.Close() })
			if err := consumer.Register(NewHandler(queue, topic, func(context.Context, Event[benchPayload]) error { count(); return nil })); err != nil {
				b.Fatal(err)
			}
			if err := consumer.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
		},
		"watermill-amqp": func(b *testing.B, cfg Config, topic Topic[benchPayload], queue string, count func()) {
			a, err := newAdapter(context.Background(), cfg, "bench", watermill.NopLogger{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = a.close() })
			sub, _, err := a.subscriber(Handler{name: queue, topic: topic.Name(), concurrency: 1})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			b.Cleanup(func() { cancel(); _ = sub.Close() })
			msgs, err := sub.Subscribe(ctx, topic.Name())
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for msg := range msgs {
					msg.Ack()
					count()
				}
			}()
		},
		"amqp091": func(b *testing.B, cfg Config, _ Topic[benchPayload], queue string, count func()) {
			conn, err := amqp091.Dial(cfg.AMQP.URL)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = conn.Close() })
			ch, err := conn.Channel()
			if err != nil {
				b.Fatal(err)
			}
			if err := ch.Qos(cfg.AMQP.Prefetch, 0, false); err != nil {
				b.Fatal(err)
			}
			deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for d := range deliveries {
					_ = d.Ack(false)
					count()
				}
			}()
		},
	}
	for _, name := range []string{"bus", "watermill-amqp", "amqp091"} {
		b.Run(name, func(b *testing.B) {
			cfg := benchConfigs(b)[AdapterAMQP]
			topic := NewTopic[benchPayload](benchTopicName("drain"), 1)
			// The bus's topology: a durable queue named after the handler,
			// bound to the topic on the run's exchange.
			cfg.AMQP.Exchange = "bench.drain-" + topic.Aggregate()
			_, queue := testenv.AMQPQueue(b, cfg.AMQP.URL, cfg.AMQP.Exchange, []string{topic.Name()}, nil)
			publisher, err := New(context.Background(), cfg, Options{Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = publisher.Close() }()
			items := make([]Item[benchPayload], 1000)
			for i := range items {
				items[i] = Item[benchPayload]{AggregateID: "bench", Payload: benchPayload{ID: i, Email: "user@example.com", Name: "Bench User"}}
			}
			for from := 0; from < b.N; from += len(items) {
				if err := PublishBatch(context.Background(), publisher, topic, items[:min(len(items), b.N-from)]); err != nil {
					b.Fatal(err)
				}
			}
			var handled atomic.Int64
			done := make(chan struct{})
			b.ResetTimer()
			start := time.Now()
			drains[name](b, cfg, topic, queue, func() {
				if handled.Add(1) == int64(b.N) {
					close(done)
				}
			})
			<-done
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
