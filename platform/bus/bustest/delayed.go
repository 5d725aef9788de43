package bustest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/testenv"
)

// relayPoll is the outbox's poll interval in these tests: how often due
// events are moved.
const relayPoll = 20 * time.Millisecond

// startApp starts what a process of the application runs: a bus with the
// outbox's Scheduler on d, its handlers, and the outbox relay forwarding to
// it. Stopping it (the returned func, also run at cleanup) closes both.
func (s *suite) startApp(d *db.DB, cfg bus.Config, hs ...bus.Handler) (*bus.Bus, func()) {
	s.t.Helper()
	logger := slog.New(slog.NewTextHandler(testenv.Output(s.t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := bus.New(context.Background(), cfg, bus.Options{Logger: logger, Scheduler: outbox.NewScheduler(d)})
	if err != nil {
		s.t.Fatalf("new bus: %v", err)
	}
	if err := b.Register(hs...); err != nil {
		s.t.Fatalf("register: %v", err)
	}
	if err := b.Start(context.Background()); err != nil {
		s.t.Fatalf("start: %v", err)
	}
	relay, err := outbox.NewRelay(d, b, outbox.Config{PollInterval: relayPoll, BatchSize: 100}, logger)
	if err != nil {
		s.t.Fatalf("relay: %v", err)
	}
	if err := relay.Start(context.Background()); err != nil {
		s.t.Fatalf("start relay: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = relay.Close()
			_ = b.Close()
		})
	}
	s.t.Cleanup(stop)
	return b, stop
}

// arrivals records when each item number was handled.
type arrivals struct {
	mu sync.Mutex
	at map[int][]time.Time
}

func newArrivals() *arrivals { return &arrivals{at: map[int][]time.Time{}} }

func (a *arrivals) handle(_ context.Context, e bus.Event[Item]) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at[e.Payload.N] = append(a.at[e.Payload.N], time.Now())
	return nil
}

func (a *arrivals) of(n int) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.at[n]...)
}

func (a *arrivals) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// testDelayed: events published with PublishAfter and PublishAt through the
// outbox are delivered once, no earlier than due, an event published at
// once in the same transaction is not held back by them, and a cancelled
// one never arrives.
func testDelayed(t *testing.T, s *suite) {
	d := dbtest.Open(t, db.DriverSQLite, outbox.Migrations)
	topic := s.topic("delayed")
	got := newArrivals()
	s.startApp(d, s.config(), bus.NewHandler(s.handlerName("later"), topic, got.handle))

	ctx := context.Background()
	var (
		published       time.Time
		afterID, atID   string
		cancelID        string
		dueAfter, dueAt time.Time
	)
	err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		pub := outbox.Publisher(tx)
		published = time.Now()
		dueAfter, dueAt = published.Add(700*time.Millisecond), published.Add(400*time.Millisecond)
		var err error
		if afterID, err = bus.PublishAfter(ctx, pub, topic, "a", Item{N: 1}, 700*time.Millisecond); err != nil {
			return err
		}
		if atID, err = bus.PublishAt(ctx, pub, topic, "a", Item{N: 2}, dueAt); err != nil {
			return err
		}
		if cancelID, err = bus.PublishAfter(ctx, pub, topic, "a", Item{N: 3}, 500*time.Millisecond); err != nil {
			return err
		}
		return bus.Publish(ctx, pub, topic, "a", Item{N: 0})
	})
	if err != nil {
		t.Fatal(err)
	}
	if afterID == "" || atID == "" || afterID == atID {
		t.Fatalf("event ids %q and %q, want two distinct ids", afterID, atID)
	}
	if ok, err := outbox.CancelScheduled(ctx, d, cancelID); err != nil || !ok {
		t.Fatalf("cancel a scheduled event: %t, %v; want it cancelled", ok, err)
	}
	if ok, err := outbox.CancelScheduled(ctx, d, cancelID); err != nil || ok {
		t.Fatalf("cancel it again: %t, %v; want false: nothing waits", ok, err)
	}

	eventually(t, wait, "the immediate and both delayed events arrive", func() bool { return got.len() == 3 })
	stays(t, 500*time.Millisecond, "each arrives once and the cancelled one never", func() bool {
		return got.len() == 3 && len(got.of(1)) == 1 && len(got.of(2)) == 1
	})
	if now := got.of(0)[0]; !now.Before(dueAt) {
		t.Errorf("the event published at once arrived %s after publishing, behind the delayed ones", now.Sub(published))
	}
	for n, due := range map[int]time.Time{1: dueAfter, 2: dueAt} {
		if at := got.of(n)[0]; at.Before(due) {
			t.Errorf("event %d arrived %s before it was due", n, due.Sub(at))
		} else {
			t.Logf("event %d arrived %s after it was due", n, at.Sub(due).Round(time.Millisecond))
		}
	}
	if ok, err := outbox.CancelScheduled(ctx, d, afterID); err != nil || ok {
		t.Fatalf("cancel a delivered event: %t, %v; want false", ok, err)
	}
	if _, err := bus.PublishAfter(ctx, s.busFor(t), topic, "a", Item{N: 4}, time.Second); err == nil {
		t.Fatal("a delayed event published straight to the bus was accepted; want it refused, since no adapter holds it")
	}
}

// busFor is a started bus without handlers, to publish straight to.
func (s *suite) busFor(t *testing.T) *bus.Bus {
	t.Helper()
	return s.start(s.config(), nil)
}

// testDelayedSurvivesRestart: a scheduled event outlives every process that
// knew of it, and is delivered by the next one to start.
func testDelayedSurvivesRestart(t *testing.T, s *suite) {
	d := dbtest.Open(t, db.DriverSQLite, outbox.Migrations)
	topic := s.topic("restarted")
	name := s.handlerName("after-restart")
	first := newArrivals()
	_, stop := s.startApp(d, s.config(), bus.NewHandler(name, topic, first.handle))
	ctx := context.Background()
	err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := bus.PublishAfter(ctx, outbox.Publisher(tx), topic, "a", Item{N: 1}, 600*time.Millisecond)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	stop() // every process goes away before the event is due
	if first.len() != 0 {
		t.Fatalf("the event arrived before it was due")
	}

	second := newArrivals()
	s.startApp(d, s.config(), bus.NewHandler(name, topic, second.handle))
	eventually(t, wait, "the restarted application delivers the scheduled event", func() bool { return second.len() == 1 })
	stays(t, 300*time.Millisecond, "once", func() bool { return len(second.of(1)) == 1 && first.len() == 0 })
}

// testRetryAfter: a handler that asks to retry an event later frees its
// consumer at once, so the events behind it are handled in the meantime
// (at concurrency 1), and gets it back no earlier than asked; one that keeps
// asking is poisoned after the last attempt.
func testRetryAfter(t *testing.T, s *suite) {
	d := dbtest.Open(t, db.DriverSQLite, outbox.Migrations)
	topic := s.topic("later")
	name := s.handlerName("retry-later")
	got := newArrivals()
	sink := &poisonSink{}
	var (
		mu       sync.Mutex
		attempts = map[int][]time.Time{}
	)
	h := bus.NewHandler(name, topic, func(ctx context.Context, e bus.Event[Item]) error {
		mu.Lock()
		attempts[e.Payload.N] = append(attempts[e.Payload.N], time.Now())
		n := len(attempts[e.Payload.N])
		mu.Unlock()
		switch {
		case e.Payload.Tag == "never":
			return bus.RetryAfter(errors.New("the partner is still down"), 50*time.Millisecond)
		case e.Payload.Tag == "later" && n == 1:
			return bus.RetryAfter(errors.New("not yet"), 500*time.Millisecond)
		}
		return got.handle(ctx, e)
	}, bus.Concurrency(1))
	bs, _ := s.startApp(d, s.config(), sink.handler(s), h)
	s.publish(bs, topic, Item{N: 0, Tag: "later"})
	s.publish(bs, topic, Item{N: 1}, Item{N: 2})

	eventually(t, wait, "the events behind the rescheduled one are handled", func() bool { return len(got.of(1)) == 1 && len(got.of(2)) == 1 })
	if len(got.of(0)) != 0 {
		t.Fatal("the rescheduled event came back before it was due")
	}
	eventually(t, wait, "the rescheduled event is handled again", func() bool { return len(got.of(0)) == 1 })
	mu.Lock()
	first := attempts[0][0]
	mu.Unlock()
	if waited := got.of(0)[0].Sub(first); waited < 500*time.Millisecond {
		t.Fatalf("retried %s after the first attempt, want >= 500ms", waited)
	} else {
		t.Logf("event 0 asked to retry after 500ms at its first attempt; events 1 and 2 were handled %s and %s later, at concurrency 1; event 0 came back %s after its first attempt",
			got.of(1)[0].Sub(first).Round(time.Millisecond), got.of(2)[0].Sub(first).Round(time.Millisecond), waited.Round(time.Millisecond))
	}
	if len(sink.all()) != 0 {
		t.Fatalf("poisoned: %+v", sink.all())
	}

	s.publish(bs, topic, Item{N: 3, Tag: "never"})
	eventually(t, wait, "an event rescheduled at every attempt is poisoned after the last", func() bool { return len(sink.all()) == 1 })
	p := sink.all()[0]
	mu.Lock()
	defer mu.Unlock()
	if p.Handler != name || p.Topic != topic.Name() || p.Attempts != 3 || len(attempts[3]) != 3 {
		t.Fatalf("poisoned handler %q topic %q after %d attempts (%d runs); want %q, %q, 3 (bus.retry.max_retries 2)",
			p.Handler, p.Topic, p.Attempts, len(attempts[3]), name, topic.Name())
	}
	if p.Metadata[bus.MetaReplayFor] != name {
		t.Fatalf("the rescheduled copy is not addressed to its handler: %v", p.Metadata)
	}
}

// testRescheduleBeyond: with RescheduleBeyond, the retries whose backoff
// fits under the threshold wait in the consumer, and the longer ones are
// rescheduled, the attempts counted across deliveries.
func testRescheduleBeyond(t *testing.T, s *suite) {
	d := dbtest.Open(t, db.DriverSQLite, outbox.Migrations)
	topic := s.topic("backoff")
	other := newArrivals()
	var (
		mu    sync.Mutex
		runs  []time.Time
		phase = map[int]int{} // attempt -> item 1 handled by then
	)
	cfg := s.config()
	// Waits before attempts 2..5: 40ms, 80ms (in the consumer), 160ms,
	// 320ms (rescheduled: beyond 100ms).
	cfg.Retry = bus.RetryConfig{MaxRetries: 4, InitialInterval: 40 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second}
	h := bus.NewHandler(s.handlerName("patient"), topic, func(ctx context.Context, e bus.Event[Item]) error {
		if e.Payload.N != 0 {
			return other.handle(ctx, e)
		}
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, time.Now())
		phase[len(runs)] = other.len()
		if len(runs) < 5 {
			return errTransient
		}
		return nil
	}, bus.RescheduleBeyond(100*time.Millisecond), bus.Concurrency(1))
	bs, _ := s.startApp(d, cfg, h)
	s.publish(bs, topic, Item{N: 0})
	s.publish(bs, topic, Item{N: 1})

	eventually(t, wait, "the fifth attempt succeeds", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(runs) == 5
	})
	stays(t, 300*time.Millisecond, "no attempt after the success", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(runs) == 5
	})
	mu.Lock()
	defer mu.Unlock()
	if phase[3] != 0 {
		t.Errorf("the event behind was handled during the in-consumer retries, which hold the consumer (at concurrency 1)")
	}
	if phase[4] != 1 {
		t.Errorf("the event behind was not handled before the rescheduled attempt: the consumer was held")
	}
	for i, want := range []time.Duration{40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond, 320 * time.Millisecond} {
		if gap := runs[i+1].Sub(runs[i]); gap < want {
			t.Errorf("attempt %d came %s after the previous one, want >= %s", i+2, gap, want)
		}
	}
}
