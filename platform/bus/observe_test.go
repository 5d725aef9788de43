package bus_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
)

// recordingObserver keeps copies of what it is told.
type recordingObserver struct {
	mu        sync.Mutex
	seen      []bus.Handled
	published []bus.Published
}

func (r *recordingObserver) ObservePublished(p bus.Published) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.Metadata = maps.Clone(p.Metadata)
	r.published = append(r.published, p)
}

func (r *recordingObserver) publishedTo(topic string) []bus.Published {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []bus.Published
	for _, p := range r.published {
		if p.Topic == topic {
			out = append(out, p)
		}
	}
	return out
}

func (r *recordingObserver) ObserveHandled(h bus.Handled) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h.Metadata = maps.Clone(h.Metadata)
	h.Payload = slices.Clone(h.Payload)
	r.seen = append(r.seen, h)
}

func (r *recordingObserver) of(handler string) []bus.Handled {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []bus.Handled
	for _, h := range r.seen {
		if h.Handler == handler {
			out = append(out, h)
		}
	}
	return out
}

func TestObserverSeesHowEveryDeliveryEnded(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Retry.MaxRetries, cfg.Retry.InitialInterval = 2, time.Millisecond
	obs := &recordingObserver{}
	b, err := bus.New(context.Background(), cfg, bus.Options{Observers: []bus.Observer{obs}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	var flaky atomic.Int32
	err = b.Register(
		bus.NewHandler("test.fine", greeted, noop),
		// Fails its first run only.
		bus.NewHandler("test.flaky", greeted, func(context.Context, bus.Event[greeting]) error {
			if flaky.Add(1) == 1 {
				return errors.New("not yet")
			}
			return nil
		}),
		bus.NewHandler("test.broken", greeted, func(context.Context, bus.Event[greeting]) error {
			return errors.New("always broken")
		}),
		bus.NewPoisonHandler("test.poison-store", func(context.Context, bus.PoisonedMessage) error { return nil }),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	msg, err := bus.NewMessage(context.Background(), greeted, "g-1", greeting{Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	msg.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if err := b.Publish(greeted.Name(), msg); err != nil {
		t.Fatal(err)
	}
	// A replay for test.broken only: the other handlers do not run it.
	replay, _ := bus.NewMessage(context.Background(), greeted, "g-2", greeting{Text: "again"})
	replay.Metadata.Set(bus.MetaReplayFor, "test.broken")
	if err := b.Publish(greeted.Name(), replay); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(obs.of("test.poison-store")) < 2 || len(obs.of("test.broken")) < 2 || len(obs.of("test.flaky")) < 1 || len(obs.of("test.fine")) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("observed only %+v", obs.seen)
		}
		time.Sleep(5 * time.Millisecond)
	}

	fine := obs.of("test.fine")
	if len(fine) != 1 {
		t.Fatalf("test.fine observed %d times, want 1 (the replay is not its)", len(fine))
	}
	f := fine[0]
	env, err := f.Envelope()
	if f.Result != bus.ResultOK || f.Err != nil || f.Attempts != 1 || f.Topic != greeted.Name() || f.MessageID != msg.UUID ||
		err != nil || env.EventID != msg.UUID || env.AggregateID != "g-1" || string(f.Payload) != `{"text":"hi"}` ||
		f.TraceParent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" || f.Duration <= 0 {
		t.Errorf("test.fine observed %+v (envelope %+v, %v)", f, env, err)
	}
	if fl := obs.of("test.flaky"); len(fl) != 1 || fl[0].Result != bus.ResultOK || fl[0].Attempts != 2 {
		t.Errorf("test.flaky observed %+v, want one ok delivery of 2 attempts", fl)
	}
	broken := obs.of("test.broken")
	if len(broken) != 2 {
		t.Fatalf("test.broken observed %d times, want 2", len(broken))
	}
	for _, h := range broken {
		if h.Result != bus.ResultPoisoned || h.Attempts != 3 || h.Err == nil || !strings.Contains(h.Err.Error(), "always broken") {
			t.Errorf("test.broken observed %+v, want poisoned after 3 attempts", h)
		}
	}
	for _, h := range obs.of("test.poison-store") {
		if h.Result != bus.ResultOK || h.Topic != cfg.PoisonTopic {
			t.Errorf("the poison handler observed %+v, want ok on %s", h, cfg.PoisonTopic)
		}
	}

	// Publishing: both events, and both messages sent to the poison topic.
	events := obs.publishedTo(greeted.Name())
	if len(events) != 2 || events[0].MessageID != msg.UUID || events[1].MessageID != replay.UUID || events[0].TraceParent == "" {
		t.Errorf("published to %s: %+v", greeted.Name(), events)
	}
	if env, err := events[0].Envelope(); err != nil || env.AggregateID != "g-1" {
		t.Errorf("envelope of a published event: %+v, %v", env, err)
	}
	if n := len(obs.publishedTo(cfg.PoisonTopic)); n != 2 {
		t.Errorf("%d messages published to the poison topic observed, want 2", n)
	}
}
