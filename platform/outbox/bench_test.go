package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/testenv"
)

// BenchmarkRelay measures how fast the relay drains a backlog of b.N
// committed events into a destination: "discard" counts them (the relay's
// own cost: reading the outbox and marking offsets), the other
// destinations are the bus on that adapter. events/s is what to compare
// with the rate at which the application writes events.
func BenchmarkRelay(b *testing.B) {
	for _, driver := range dbtest.Drivers {
		for _, dest := range []string{"discard", bus.AdapterGoChannel, bus.AdapterAMQP, bus.AdapterRedisStream} {
			if driver == db.DriverSQLite && (dest == bus.AdapterAMQP || dest == bus.AdapterRedisStream) {
				continue // brokers come with PostgreSQL in the shipped configurations
			}
			b.Run(driver+"-to-"+dest, func(b *testing.B) { benchRelay(b, driver, dest) })
		}
	}
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
	case bus.AdapterRedisStream:
		cfg.Redis.Addr = testenv.RequireRedis(b)
	}
	bs, err := bus.New(context.Background(), cfg, bus.Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bs.Close() })
	// A broadcast handler: nothing durable is left on the broker.
	h := bus.NewHandler(fmt.Sprintf("bench.relay-%d", time.Now().UnixNano()), placed, func(context.Context, bus.Event[order]) error {
		got.Add(1)
		return nil
	}, bus.Broadcast())
	if err := bs.Register(h); err != nil {
		b.Fatal(err)
	}
	if err := bs.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return bs, func(n int) { waitCount(&got, n) }
}

type counter struct{ n *atomic.Int64 }

func (c counter) Publish(_ string, msgs ...*message.Message) error {
	c.n.Add(int64(len(msgs)))
	return nil
}

func (c counter) Close() error { return nil }

func waitCount(got *atomic.Int64, n int) {
	for got.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }
