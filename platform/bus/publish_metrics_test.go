package bus_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/monolith/platform/bus"
)

// TestPublishedMessagesAreCountedByTopic checks that every message that
// reached the adapter counts once, in the publish histogram, under the
// topic it went to: events
// published directly, and a poisoned one under the poison topic.
func TestPublishedMessagesAreCountedByTopic(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := bus.DefaultConfig()
	cfg.Retry.MaxRetries = 0
	b, err := bus.New(context.Background(), cfg, bus.Options{Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	poisoned := make(chan struct{})
	var once sync.Once
	err = b.Register(
		bus.NewHandler("test.refuse", greeted, func(context.Context, bus.Event[greeting]) error { return errors.New("no") }),
		bus.NewPoisonHandler("test.poison-sink", func(context.Context, bus.PoisonedMessage) error {
			once.Do(func() { close(poisoned) })
			return nil
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := bus.Publish(context.Background(), b, greeted, "g", greeting{"hi"}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-poisoned:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing poisoned")
	}
	// The first poisoned message stops nothing: wait for the other two.
	deadline := time.Now().Add(10 * time.Second)
	for published(t, reg, cfg.PoisonTopic) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := published(t, reg, greeted.Name()); got != 3 {
		t.Fatalf("successful publishes to %q = %v, want 3", greeted.Name(), got)
	}
	if got := published(t, reg, cfg.PoisonTopic); got != 3 {
		t.Fatalf("successful publishes to %q = %v, want 3", cfg.PoisonTopic, got)
	}
}

// published is how many publishes to topic succeeded: the count of
// app_bus_publish_time_seconds{success="true",topic}, read from reg.
func published(t *testing.T, reg *prometheus.Registry, topic string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "app_bus_publish_time_seconds" {
			continue
		}
		var n float64
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["topic"] == topic && labels["success"] == "true" {
				n += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return n
	}
	return 0
}
