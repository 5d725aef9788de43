package bustest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/monolith/platform/bus"
)

const wait = 30 * time.Second

func testFanOut(t *testing.T, s *suite) {
	topic := s.topic("fanned")
	a, b := newRecorder(), newRecorder()
	bs := s.start(s.config(), nil,
		bus.NewHandler(s.handlerName("first"), topic, a.handle),
		bus.NewHandler(s.handlerName("second"), topic, b.handle))
	s.publish(bs, topic, items(50)...)

	eventually(t, wait, "both handlers get all 50 events", func() bool { return a.len() == 50 && b.len() == 50 })
	for _, r := range []*recorder{a, b} {
		if len(r.by) != 50 {
			t.Fatalf("handler got %d distinct events, want 50", len(r.by))
		}
	}
}

func testCompetingConsumers(t *testing.T, s *suite) {
	if !s.a.Shared {
		t.Skip("adapter has no broker shared between instances")
	}
	const n = 1000
	topic := s.topic("competed")
	name := s.handlerName("compete")
	var mu sync.Mutex
	perInstance := map[int]int{}
	byID := map[string]int{}
	handler := func(instance int) bus.Handler {
		return bus.NewHandler(name, topic, func(_ context.Context, e bus.Event[Item]) error {
			mu.Lock()
			defer mu.Unlock()
			perInstance[instance]++
			byID[e.EventID]++
			return nil
		})
	}
	first := s.start(s.config(), nil, handler(1))
	s.start(s.config(), nil, handler(2))
	s.publish(first, topic, items(n)...)

	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		return perInstance[1] + perInstance[2]
	}
	eventually(t, wait, fmt.Sprintf("%d events handled", n), func() bool { return total() >= n })
	stays(t, time.Second, "no event is handled twice", func() bool { return total() == n })
	mu.Lock()
	defer mu.Unlock()
	if len(byID) != n {
		t.Fatalf("%d distinct events handled, want %d", len(byID), n)
	}
	for id, c := range byID {
		if c != 1 {
			t.Fatalf("event %s handled %d times", id, c)
		}
	}
	if perInstance[1] == 0 || perInstance[2] == 0 {
		t.Fatalf("events not shared between instances: %v", perInstance)
	}
	t.Logf("split between instances: %v", perInstance)
}

func testRetry(t *testing.T, s *suite) {
	topic := s.topic("retried")
	var mu sync.Mutex
	var calls []time.Time
	succeeded := newRecorder()
	sink := &poisonSink{}
	cfg := s.config()
	cfg.Retry = bus.RetryConfig{MaxRetries: 4, InitialInterval: 50 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second}
	bs := s.start(cfg, nil, sink.handler(s),
		bus.NewHandler(s.handlerName("flaky"), topic, func(ctx context.Context, e bus.Event[Item]) error {
			mu.Lock()
			calls = append(calls, time.Now())
			n := len(calls)
			mu.Unlock()
			if n < 3 {
				return errTransient
			}
			return succeeded.handle(ctx, e)
		}))
	s.publish(bs, topic, Item{N: 1})

	eventually(t, wait, "the third attempt succeeds", func() bool { return succeeded.len() == 1 })
	stays(t, 500*time.Millisecond, "a success counts once", func() bool { return succeeded.len() == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 3 {
		t.Fatalf("handler ran %d times, want 3", len(calls))
	}
	// Backoff: 50ms then 100ms (exponential, multiplier 2).
	if d := calls[1].Sub(calls[0]); d < 50*time.Millisecond {
		t.Fatalf("first retry after %s, want >= 50ms", d)
	}
	if d := calls[2].Sub(calls[1]); d < 100*time.Millisecond {
		t.Fatalf("second retry after %s, want >= 100ms (exponential)", d)
	}
	if got := sink.all(); len(got) != 0 {
		t.Fatalf("a message that succeeded on retry was poisoned: %+v", got)
	}
}

func testPoison(t *testing.T, s *suite) {
	topic := s.topic("rejected")
	name := s.handlerName("picky")
	good := newRecorder()
	sink := &poisonSink{}
	reg := prometheus.NewRegistry()
	bs := s.start(s.config(), reg, sink.handler(s),
		bus.NewHandler(name, topic, func(ctx context.Context, e bus.Event[Item]) error {
			if e.Payload.Tag == "bad" {
				return fmt.Errorf("item %d: %w", e.Payload.N, errTransient)
			}
			return good.handle(ctx, e)
		}))
	s.publish(bs, topic, Item{N: 0, Tag: "bad"})
	s.publish(bs, topic, items(5)[1:]...)

	eventually(t, wait, "the bad event is poisoned and the next ones handled", func() bool {
		return len(sink.all()) == 1 && good.len() == 4
	})
	p := sink.all()[0]
	if p.Topic != topic.Name() || p.Handler != name || p.Attempts != 3 || !strings.Contains(p.Reason, "transient failure") {
		t.Fatalf("poisoned message = topic %q handler %q attempts %d reason %q; want %q, %q, 3 (1 + 2 retries), the handler's error",
			p.Topic, p.Handler, p.Attempts, p.Reason, topic.Name(), name)
	}
	if p.Metadata[bus.MetaEventType] != topic.Name() || !strings.Contains(string(p.Payload), `"bad"`) {
		t.Fatalf("poisoned message lost its envelope or payload: %v %s", p.Metadata, p.Payload)
	}
	// The counter moves once the poison publish returns, which may be just
	// after the sink got the message.
	eventually(t, wait, "app_bus_poisoned_messages_total to reach 1", func() bool {
		return poisonedCount(t, reg, topic.Name(), name) == 1
	})
	assertHandlerMetrics(t, reg, name)
	stays(t, 300*time.Millisecond, "the poisoned event is not redelivered", func() bool { return len(sink.all()) == 1 })
}

func testPanic(t *testing.T, s *suite) {
	topic := s.topic("panicked")
	good := newRecorder()
	sink := &poisonSink{}
	bs := s.start(s.config(), nil, sink.handler(s),
		bus.NewHandler(s.handlerName("panicky"), topic, func(ctx context.Context, e bus.Event[Item]) error {
			if e.Payload.Tag == "boom" {
				panic("boom")
			}
			return good.handle(ctx, e)
		}))
	s.publish(bs, topic, Item{Tag: "boom"}, Item{N: 1}, Item{N: 2})

	eventually(t, wait, "the panicking event is poisoned and the others handled", func() bool {
		return len(sink.all()) == 1 && good.len() == 2
	})
	if p := sink.all()[0]; p.Attempts != 3 || !strings.Contains(p.Reason, "panic") {
		t.Fatalf("panic poisoned with attempts %d reason %q; want 3 attempts and the panic", p.Attempts, p.Reason)
	}
}

func testUndecodable(t *testing.T, s *suite) {
	topic := s.topic("mangled")
	good := newRecorder()
	sink := &poisonSink{}
	var runs atomic.Int32
	bs := s.start(s.config(), nil, sink.handler(s),
		bus.NewHandler(s.handlerName("strict"), topic, func(ctx context.Context, e bus.Event[Item]) error {
			runs.Add(1)
			if e.Payload.Tag == "forbidden" {
				return bus.Permanent(errors.New("forbidden item"))
			}
			return good.handle(ctx, e)
		}))

	want := 2 // a message without envelope, and a permanent error
	if err := bs.Publish(topic.Name(), rawMessage("not json at all")); err != nil {
		t.Fatal(err)
	}
	s.publish(bs, topic, Item{N: 1, Tag: "forbidden"})
	// An envelope with a payload of the wrong shape.
	wrong, err := bus.NewMessage(context.Background(), bus.NewTopic[string](topic.Name(), 1), "x", "a string, not an Item")
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Publish(topic.Name(), wrong); err != nil {
		t.Fatal(err)
	}
	want++
	if s.a.InjectRaw != nil {
		s.a.InjectRaw(t, topic.Name(), []byte("garbage from another program"))
		want++
	}
	s.publish(bs, topic, Item{N: 2})

	eventually(t, wait, fmt.Sprintf("%d messages poisoned and the valid event handled", want), func() bool {
		return len(sink.all()) == want && good.len() == 1
	})
	for _, p := range sink.all() {
		if p.Attempts != 1 {
			t.Fatalf("%q retried: %d attempts, want 1", p.Reason, p.Attempts)
		}
	}
	if runs.Load() != 2 { // the permanent error and the valid event; the rest never reach it
		t.Fatalf("handler ran %d times, want 2", runs.Load())
	}
}

func testTimeout(t *testing.T, s *suite) {
	topic := s.topic("slowed")
	var attempts atomic.Int32
	var firstErr atomic.Value
	done := newRecorder()
	bs := s.start(s.config(), nil,
		bus.NewHandler(s.handlerName("slow"), topic, func(ctx context.Context, e bus.Event[Item]) error {
			if attempts.Add(1) == 1 {
				select {
				case <-ctx.Done():
					firstErr.Store(ctx.Err())
					return ctx.Err()
				case <-time.After(10 * time.Second):
					return errors.New("timeout did not cancel the context")
				}
			}
			return done.handle(ctx, e)
		}, bus.Timeout(100*time.Millisecond)))
	s.publish(bs, topic, Item{N: 1})

	eventually(t, wait, "the retry after the timeout succeeds", func() bool { return done.len() == 1 })
	if err, _ := firstErr.Load().(error); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first attempt ended with %v, want context.DeadlineExceeded", err)
	}
}

func testOrder(t *testing.T, s *suite) {
	if !s.a.Ordered {
		t.Skip("adapter does not order events (see docs/bus.md)")
	}
	const n = 300
	topic := s.topic("ordered")
	r := newRecorder()
	bs := s.start(s.config(), nil, bus.NewHandler(s.handlerName("sequence"), topic, r.handle))
	s.publish(bs, topic, items(n)...)

	eventually(t, wait, fmt.Sprintf("%d events handled", n), func() bool { return r.len() == n })
	for i, e := range r.snapshot() {
		if e.Payload.N != i {
			t.Fatalf("event %d handled at position %d", e.Payload.N, i)
		}
	}
}

// testPublishBatch publishes one batch of events about a few aggregates:
// each is handled once, with its own envelope, and in publish order where
// the adapter orders events.
func testPublishBatch(t *testing.T, s *suite) {
	const n, aggregates = 200, 4
	topic := s.topic("batched")
	r := newRecorder()
	bs := s.start(s.config(), nil, bus.NewHandler(s.handlerName("batch"), topic, r.handle))
	batch := make([]bus.Item[Item], n)
	for i := range batch {
		batch[i] = bus.Item[Item]{AggregateID: fmt.Sprint("agg-", i%aggregates), Payload: Item{N: i}}
	}
	if err := bus.PublishBatch(context.Background(), bs, topic, batch); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, fmt.Sprintf("%d events handled", n), func() bool { return len(r.ns()) == n })
	ids := map[string]bool{}
	next := map[string]int{} // per aggregate: the lowest item not handled yet
	for i, e := range r.snapshot() {
		if want := fmt.Sprint("agg-", e.Payload.N%aggregates); e.AggregateID != want || e.EventType != topic.Name() {
			t.Fatalf("item %d handled with aggregate %q and type %q, want %q and %q", e.Payload.N, e.AggregateID, e.EventType, want, topic.Name())
		}
		if ids[e.EventID] {
			continue // redelivered: the adapters deliver at least once
		}
		ids[e.EventID] = true
		if s.a.Ordered && e.Payload.N != i {
			t.Fatalf("item %d handled at position %d", e.Payload.N, i)
		}
		if s.a.AggregateOrder && e.Payload.N < next[e.AggregateID] {
			t.Fatalf("item %d of %s handled after a later one", e.Payload.N, e.AggregateID)
		}
		next[e.AggregateID] = e.Payload.N
	}
	if len(ids) != n {
		t.Fatalf("%d distinct event ids for %d items", len(ids), n)
	}
}

func testDurability(t *testing.T, s *suite) {
	if !s.a.Shared {
		t.Skip("adapter keeps nothing once its consumers are gone")
	}
	topic := s.topic("stored")
	name := s.handlerName("durable")
	before := newRecorder()
	first := s.start(s.config(), nil, bus.NewHandler(name, topic, before.handle))
	s.publish(first, topic, Item{N: -1})
	eventually(t, wait, "first run handles its event", func() bool { return before.len() == 1 })
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	publisher := s.start(s.config(), nil) // another instance, no handlers
	s.publish(publisher, topic, items(20)...)

	after := newRecorder()
	s.start(s.config(), nil, bus.NewHandler(name, topic, after.handle))
	eventually(t, wait, "events published while the handler was down are delivered", func() bool { return after.len() == 20 })
}

func testReconnect(t *testing.T, s *suite) {
	if s.a.DropConnections == nil {
		t.Skip("adapter has no connection to drop")
	}
	const before, total, publishers = 10, 2000, 32
	topic := s.topic("reconnected")
	r := newRecorder()
	cfg := s.config()
	// Fewer publish channels than concurrent publishers: a channel lost in
	// the reconnect would starve the publishers that wait for one.
	cfg.AMQP.PublishChannels = 2
	bs := s.start(cfg, nil, bus.NewHandler(s.handlerName("resilient"), topic, r.handle))
	s.publish(bs, topic, items(before)...)
	eventually(t, wait, "events before the drop are handled", func() bool { return r.len() == before })

	// Publishers keep going through the drop. A publish that returned nil
	// must be delivered; one that failed is tried again, as a caller would.
	var next atomic.Int64
	next.Store(before)
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for n := int(next.Add(1) - 1); n < total; n = int(next.Add(1) - 1) {
				for bus.Publish(context.Background(), bs, topic, "", Item{N: n}) != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	eventually(t, wait, "publishing under way", func() bool { return next.Load() > before+50 })
	s.a.DropConnections(t)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("publishers stuck after the drop: %d of %d events published", next.Load(), total)
	}
	eventually(t, 60*time.Second, "every event is handled", func() bool { return len(r.ns()) == total })
	if err := bs.Check(context.Background()); err != nil {
		t.Fatalf("health check after reconnect: %v", err)
	}
	// A second drop, now that the publisher was renewed once.
	s.a.DropConnections(t)
	s.publish(bs, topic, Item{N: total})
	eventually(t, 60*time.Second, "an event published after a second drop is handled", func() bool { return r.ns()[total] })
	if err := bs.Close(); err != nil {
		t.Fatalf("close after reconnects: %v", err)
	}
}

func testGracefulClose(t *testing.T, s *suite) {
	topic := s.topic("drained")
	name := s.handlerName("lingering")
	started := make(chan struct{})
	var finished atomic.Bool
	var handled atomic.Int32
	bs := s.start(s.config(), nil, bus.NewHandler(name, topic, func(ctx context.Context, _ bus.Event[Item]) error {
		handled.Add(1)
		close(started)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		finished.Store(true)
		return nil
	}))
	s.publish(bs, topic, Item{N: 1})
	<-started
	if err := bs.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !finished.Load() {
		t.Fatal("Close returned before the in-flight handler finished")
	}
	if !s.a.Shared {
		return
	}
	// Acked, not redelivered: a new instance of the handler gets nothing.
	again := newRecorder()
	s.start(s.config(), nil, bus.NewHandler(name, topic, again.handle))
	stays(t, 2*time.Second, "the event finished during close was redelivered", func() bool { return again.len() == 0 })
}

func testBroadcast(t *testing.T, s *suite) {
	topic := s.topic("broadcast")
	name := s.handlerName("invalidate")
	a, b, shared := newRecorder(), newRecorder(), newRecorder()
	normal := s.handlerName("normal")
	first := s.start(s.config(), nil,
		bus.NewHandler(name, topic, a.handle, bus.Broadcast()),
		bus.NewHandler(normal, topic, shared.handle))
	want := []*recorder{a}
	if s.a.Shared {
		s.start(s.config(), nil,
			bus.NewHandler(name, topic, b.handle, bus.Broadcast()),
			bus.NewHandler(normal, topic, shared.handle))
		want = append(want, b)
	}
	s.publish(first, topic, items(50)...)

	eventually(t, wait, "every instance's broadcast handler gets every event", func() bool {
		for _, r := range want {
			if r.len() != 50 {
				return false
			}
		}
		return shared.len() == 50
	})
	stays(t, 500*time.Millisecond, "the competing handler beside it handles each event once", func() bool { return shared.len() == 50 })
}

// gate holds every handler run until n of them are in flight at once, and
// records the most ever in flight.
type gate struct {
	n        int
	mu       sync.Mutex
	inflight int
	peak     int
	open     chan struct{}
}

func newGate(n int) *gate { return &gate{n: n, open: make(chan struct{})} }

func (g *gate) enter() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight++
	g.peak = max(g.peak, g.inflight)
	if g.inflight == g.n {
		select {
		case <-g.open:
		default:
			close(g.open)
		}
	}
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
}

func (g *gate) max() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peak
}

func testConcurrency(t *testing.T, s *suite) {
	const n = 3
	for _, broadcast := range []bool{false, true} {
		t.Run(fmt.Sprintf("broadcast=%t", broadcast), func(t *testing.T) {
			topic := s.topic(fmt.Sprintf("concurrent%t", broadcast))
			name := s.handlerName(fmt.Sprintf("parallel-%t", broadcast))
			g, r := newGate(n), newRecorder()
			cfg := s.config()
			// More than a Redis group's consumers can read ahead: the first
			// to read may hold up to read_count entries behind the gate,
			// which leaves the last consumer nothing to handle.
			events := 40 + cfg.Redis.ReadCount
			opts := []bus.HandlerOption{bus.Timeout(wait), bus.Concurrency(n)}
			if broadcast {
				// The configuration overrides what the code sets.
				cfg.Handlers = map[string]bus.HandlerConfig{name: {Concurrency: n}}
				opts = []bus.HandlerOption{bus.Timeout(wait), bus.Concurrency(1), bus.Broadcast()}
			}
			bs := s.start(cfg, nil, bus.NewHandler(name, topic, func(ctx context.Context, e bus.Event[Item]) error {
				g.enter()
				defer g.leave()
				select {
				case <-g.open:
				case <-ctx.Done():
					return ctx.Err()
				}
				// Long enough for a handler beyond n to show up in the peak.
				time.Sleep(5 * time.Millisecond)
				return r.handle(ctx, e)
			}, opts...))
			if got := bs.Handlers()[0].Concurrency(); got != n {
				t.Fatalf("Handlers()[0].Concurrency() = %d, want %d", got, n)
			}
			s.publish(bs, topic, items(events)...)

			select {
			case <-g.open:
			case <-time.After(wait):
				t.Fatalf("after %s: never %d events in flight at once (at most %d)", wait, n, g.max())
			}
			eventually(t, wait, fmt.Sprintf("%d events handled", events), func() bool { return len(r.ns()) == events })
			if peak := g.max(); peak > n {
				t.Fatalf("%d events in flight at once, want at most %d", peak, n)
			}
		})
	}
}

func testAggregateOrder(t *testing.T, s *suite) {
	if !s.a.AggregateOrder {
		t.Skip("adapter does not keep per-aggregate order with concurrency > 1 (see docs/bus.md)")
	}
	const aggregates, perAggregate = 6, 30
	topic := s.topic("interleaved")
	var mu sync.Mutex
	got := map[string][]int{}
	busy := map[string]bool{}
	attempts := map[int]int{}
	var overlap atomic.Value
	bs := s.start(s.config(), nil, bus.NewHandler(s.handlerName("per-aggregate"), topic, func(_ context.Context, e bus.Event[Item]) error {
		agg := e.AggregateID
		mu.Lock()
		if busy[agg] {
			overlap.Store(agg)
		}
		busy[agg] = true
		attempts[e.Payload.N]++
		first := attempts[e.Payload.N] == 1
		mu.Unlock()
		defer func() {
			mu.Lock()
			busy[agg] = false
			mu.Unlock()
		}()
		time.Sleep(time.Duration(e.Payload.N%3) * time.Millisecond)
		if first && e.Payload.N%7 == 0 {
			return errTransient // retried; later events of the aggregate must wait
		}
		mu.Lock()
		got[agg] = append(got[agg], e.Payload.N)
		mu.Unlock()
		return nil
	}, bus.Concurrency(4)))

	// Aggregates interleaved: a0 a1 ... a5 a0 a1 ...
	for i := range aggregates * perAggregate {
		agg := fmt.Sprintf("a%d", i%aggregates)
		if err := bus.Publish(context.Background(), bs, topic, agg, Item{N: i, Tag: agg}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, wait, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, ns := range got {
			total += len(ns)
		}
		return total == aggregates*perAggregate
	})
	if agg := overlap.Load(); agg != nil {
		t.Fatalf("two events of aggregate %v handled at once", agg)
	}
	mu.Lock()
	defer mu.Unlock()
	for agg, ns := range got {
		for i := 1; i < len(ns); i++ {
			if ns[i] < ns[i-1] {
				t.Fatalf("aggregate %s handled out of publish order: %v", agg, ns)
			}
		}
	}
}

func testOrderedHandler(t *testing.T, s *suite) {
	topic := s.topic("serialised")
	name := s.handlerName("ordered")
	if !s.a.OrderedHandlers {
		b, err := bus.New(context.Background(), s.config(), bus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = b.Close() }()
		err = b.Register(bus.NewHandler(name, topic, newRecorder().handle, bus.Ordered()))
		if err == nil || !strings.Contains(err.Error(), "is ordered, which") {
			t.Fatalf("Register of an ordered handler = %v, want an error saying the adapter cannot order", err)
		}
		return
	}
	const n = 200
	var mu sync.Mutex
	var order []int
	inflight := 0
	var overlap atomic.Bool
	handler := func() bus.Handler {
		return bus.NewHandler(name, topic, func(_ context.Context, e bus.Event[Item]) error {
			mu.Lock()
			inflight++
			if inflight > 1 {
				overlap.Store(true)
			}
			mu.Unlock()
			time.Sleep(time.Duration(e.Payload.N%2) * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			inflight--
			order = append(order, e.Payload.N)
			return nil
		}, bus.Ordered())
	}
	cfg := s.config()
	cfg.Concurrency = 4 // the default does not apply to an ordered handler
	instances := []*bus.Bus{s.start(cfg, nil, handler())}
	if s.a.Shared {
		instances = append(instances, s.start(cfg, nil, handler()))
	}
	if got := instances[0].Handlers()[0].Concurrency(); got != 1 {
		t.Fatalf("ordered handler has concurrency %d, want 1", got)
	}
	s.publish(instances[0], topic, items(n)...)

	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(order)
	}
	eventually(t, wait, fmt.Sprintf("%d events handled", n), func() bool { return handled() == n })
	if overlap.Load() {
		t.Fatal("two events of an ordered handler handled at once")
	}
	mu.Lock()
	defer mu.Unlock()
	for i, got := range order {
		if got != i {
			t.Fatalf("event %d handled at position %d", got, i)
		}
	}
}
