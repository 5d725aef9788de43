package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/testenv"
)

// BenchmarkRelay measures how fast the relay drains a backlog of b.N
// committed events into a destination: "discard" counts them (the relay's
// own cost: reading the outbox, unwrapping the envelopes, storing the
// offset: its ceiling), the other destinations are the bus on that adapter,
// and an event counts once the broker confirmed it (a durable queue on
// RabbitMQ, a stream on Redis; nothing consumes them). events/s is what to
// compare with the rate at which the application writes events.
// raw-amqp091-confirms is the yardstick for AMQP: amqp091-go alone
// publishing b.N such events to the same queue, with a window of async
// publisher confirms.
func BenchmarkRelay(b *testing.B) {
	for _, driver := range dbtest.Drivers {
		for _, dest := range []string{"discard", bus.AdapterGoChannel, bus.AdapterAMQP, bus.AdapterRedisStream} {
			if driver == db.DriverSQLite && (dest == bus.AdapterAMQP || dest == bus.AdapterRedisStream) {
				continue // brokers come with PostgreSQL in the shipped configurations
			}
			b.Run(driver+"-to-"+dest, func(b *testing.B) { benchRelay(b, driver, dest) })
		}
	}
	b.Run("raw-amqp091-confirms", benchRawAMQP)
}

func benchRelay(b *testing.B, driver, dest string) {
	d := dbtest.Open(b, driver)
	out, wait := destination(b, dest)
	r, err := outbox.NewRelay(d, out, outbox.DefaultConfig(), quiet()) // creates the tables
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i += 100 {
		err := d.InTx(context.Background(), func(ctx context.Context, tx *db.Tx) error {
			for j := i; j < min(i+100, b.N); j++ {
				if err := bus.Publish(ctx, outbox.Publisher(tx), placed, fmt.Sprint(j%10), order{Seq: j}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	if err := r.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	wait(b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.StopTimer()
	_ = r.Close()
}

// destination returns the publisher the relay forwards to and a function
// that waits until n events arrived there.
func destination(b *testing.B, name string) (message.Publisher, func(n int)) {
	var got atomic.Int64
	if name == "discard" {
		return counter{&got}, func(n int) { waitCount(&got, n) }
	}
	cfg := bus.DefaultConfig()
	cfg.Adapter = name
	switch name {
	case bus.AdapterAMQP:
		cfg.AMQP.URL, cfg.AMQP.Exchange = testenv.RequireAMQP(b), "bench.relay"
		benchQueue(b, cfg.AMQP.URL, cfg.AMQP.Exchange)
	case bus.AdapterRedisStream:
		cfg.Redis.Addr = testenv.RequireRedis(b)
		client := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr})
		b.Cleanup(func() {
			_ = client.Del(context.Background(), placed.Name()).Err()
			_ = client.Close()
		})
	}
	bs, err := bus.New(context.Background(), cfg, bus.Options{
		Logger: quiet(),
		// Counts what the broker confirmed, through the bus's whole chain.
		WrapPublisher: func(p message.Publisher) message.Publisher { return confirmed{p, &got} },
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bs.Close() })
	return bs, func(n int) { waitCount(&got, n) }
}

// benchQueue declares a durable queue bound to placed on exchange, as a
// handler's, so the broker stores what it confirms; it is deleted after.
func benchQueue(b *testing.B, url, exchange string) string {
	conn, err := amqp091.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	queue := "bench.relay-" + watermill.NewShortUUID()[:8]
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	if err := ch.QueueBind(queue, placed.Name(), exchange, false, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_, _ = ch.QueueDelete(queue, false, false, false)
		_ = conn.Close()
	})
	return queue
}

// benchRawAMQP publishes b.N events like the relay's with amqp091-go alone:
// persistent, on one confirm-mode channel, up to 1024 confirms outstanding.
func benchRawAMQP(b *testing.B) {
	url, exchange := testenv.RequireAMQP(b), "bench.relay"
	benchQueue(b, url, exchange)
	conn, err := amqp091.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	publishings := make([]amqp091.Publishing, b.N)
	for i := range publishings {
		msg, err := bus.NewMessage(context.Background(), placed, fmt.Sprint(i%10), order{Seq: i})
		if err != nil {
			b.Fatal(err)
		}
		if publishings[i], err = (amqp.DefaultMarshaler{}).Marshal(msg); err != nil {
			b.Fatal(err)
		}
	}
	const window = 1024
	pending := make(chan *amqp091.DeferredConfirmation, window)
	done := make(chan struct{})
	var nacked atomic.Int64
	go func() {
		defer close(done)
		for dc := range pending {
			if !dc.Wait() {
				nacked.Add(1)
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	for _, p := range publishings {
		dc, err := ch.PublishWithDeferredConfirm(exchange, placed.Name(), false, false, p)
		if err != nil {
			b.Fatal(err)
		}
		pending <- dc
	}
	close(pending)
	<-done
	if n := nacked.Load(); n > 0 {
		b.Fatalf("%d messages nacked", n)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

type counter struct{ n *atomic.Int64 }

func (c counter) Publish(_ string, msgs ...*message.Message) error {
	c.n.Add(int64(len(msgs)))
	return nil
}

func (c counter) Close() error { return nil }

// confirmed counts the messages its publisher accepted.
type confirmed struct {
	message.Publisher
	n *atomic.Int64
}

func (c confirmed) Publish(topic string, msgs ...*message.Message) error {
	if err := c.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	c.n.Add(int64(len(msgs)))
	return nil
}

func waitCount(got *atomic.Int64, n int) {
	for got.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// BenchmarkPublishBatch commits b.N events into the outbox, 100 per transaction,
// with one bus.PublishBatch call (one INSERT) or a loop of bus.Publish
// (an INSERT each). events/s is what a use case that emits many events can
// write.
func BenchmarkPublishBatch(b *testing.B) {
	const perTx = 100
	for _, driver := range dbtest.Drivers {
		for _, mode := range []string{"batch", "loop"} {
			b.Run(driver+"-"+mode, func(b *testing.B) {
				d := dbtest.Open(b, driver)
				if _, err := outbox.NewRelay(d, counter{new(atomic.Int64)}, outbox.DefaultConfig(), quiet()); err != nil { // creates the tables
					b.Fatal(err)
				}
				items := make([]bus.Item[order], perTx)
				for i := range items {
					items[i] = bus.Item[order]{AggregateID: fmt.Sprint(i % 10), Payload: order{Seq: i}}
				}
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i += perTx { // b.N events
					call := items[:min(perTx, b.N-i)]
					err := d.InTx(context.Background(), func(ctx context.Context, tx *db.Tx) error {
						if mode == "batch" {
							return bus.PublishBatch(ctx, outbox.Publisher(tx), placed, call)
						}
						for _, it := range call {
							if err := bus.Publish(ctx, outbox.Publisher(tx), placed, it.AggregateID, it.Payload); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}
