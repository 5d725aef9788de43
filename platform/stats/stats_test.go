package stats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/poison"
	"github.com/example/monolith/platform/stats"
)

type job struct {
	N int `json:"n"`
}

var (
	queued   = bus.NewTopic[job]("statstest.job.queued", 1)
	rejected = bus.NewTopic[job]("statstest.job.rejected", 1)
)

// TestReport runs a bus on gochannel with a blocked handler and a failing
// one, and checks the report and the metrics of what waits, what was
// poisoned, what the outbox holds, and this instance's rates.
func TestReport(t *testing.T) {
	dbtest.Each(t, []db.Migrations{poison.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		reg := prometheus.NewRegistry()
		cfg := bus.DefaultConfig()
		cfg.Retry = bus.RetryConfig{MaxRetries: 1, InitialInterval: time.Millisecond, Multiplier: 1, MaxInterval: time.Millisecond}
		b, err := bus.New(ctx, cfg, bus.Options{Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		release := make(chan struct{})
		var releaseOnce sync.Once
		t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
		store := poison.NewStore(d)
		err = b.Register(
			bus.NewHandler("statstest.work", queued, func(ctx context.Context, _ bus.Event[job]) error {
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}, bus.Concurrency(2)),
			bus.NewHandler("statstest.refuse", rejected, func(context.Context, bus.Event[job]) error {
				return errors.New("refused")
			}),
			bus.NewPatternHandler("statstest.audit", "statstest.job.*", func(context.Context, bus.RawEvent) error { return nil }),
			store.Handler(),
		)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// Three events wait in the outbox: its relay ran (creating its
		// tables) and stopped.
		relay, err := outbox.NewRelay(d, b, outbox.DefaultConfig(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := relay.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := relay.Close(); err != nil {
			t.Fatal(err)
		}
		err = d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
			for n := range 3 {
				if err := bus.Publish(ctx, outbox.Publisher(tx), queued, "job", job{n}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		s, err := stats.New(stats.Reader{Bus: b, Handlers: b.Handlers, Config: cfg, DB: d, Poison: store}, reg)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(s.Stop)
		for n := range 5 {
			if err := bus.Publish(ctx, b, queued, fmt.Sprint("job-", n), job{n}); err != nil {
				t.Fatal(err)
			}
		}
		if err := bus.Publish(ctx, b, rejected, "job", job{}); err != nil {
			t.Fatal(err)
		}

		var r stats.Report
		eventually(t, "5 events waiting or in flight, one poisoned, rates over a window", func() bool {
			r = s.Report(ctx)
			w := handler(t, r, "statstest.work")
			return w.Waiting != nil && *w.Waiting == 3 && *w.Pending == 2 && r.Poison != nil && r.Poison.Total == 1 && r.Rates != nil
		})
		if len(r.Errors) != 0 {
			t.Fatalf("errors: %v", r.Errors)
		}
		w := handler(t, r, "statstest.work")
		if w.Topic != queued.Name() || w.Concurrency != 2 || w.DepthScope != "instance" || w.OldestUnhandledSeconds == nil || *w.OldestUnhandledSeconds <= 0 || *w.Poisoned != 0 {
			t.Fatalf("blocked handler %s", show(w))
		}
		refused := handler(t, r, "statstest.refuse")
		if *refused.Poisoned != 1 || *refused.RunsPerSecond <= 0 || *refused.ErrorRatio != 1 || *refused.ErrorsPerSecond <= 0 || refused.P95Seconds == nil {
			t.Fatalf("failing handler %s", show(refused))
		}
		if r.Outbox == nil || r.Outbox.Backlog != 3 || r.Outbox.OldestUnforwardedSeconds < 0 {
			t.Fatalf("outbox %+v", r.Outbox)
		}
		if r.Poison.ByHandler[0] != (stats.PoisonCount{Topic: rejected.Name(), Handler: "statstest.refuse", Messages: 1}) {
			t.Fatalf("poison %+v", r.Poison)
		}
		if tp := topic(t, r, queued.Name()); *tp.Waiting != 3 || *tp.PublishedPerSecond <= 0 || !slices.Equal(tp.Handlers, []string{"statstest.audit", "statstest.work"}) {
			t.Fatalf("topic %+v", tp)
		}
		if tp := topic(t, r, rejected.Name()); !slices.Equal(tp.Handlers, []string{"statstest.audit", "statstest.refuse"}) {
			t.Fatalf("a pattern handler is not listed under the topics it matches: %+v", tp)
		}
		for _, tp := range r.Topics {
			if bus.IsPattern(tp.Topic) {
				t.Fatalf("a pattern is listed as a topic: %+v", tp)
			}
		}
		if tp := topic(t, r, cfg.PoisonTopic); *tp.PublishedPerSecond <= 0 || tp.Handlers[0] != "poison.store" {
			t.Fatalf("poison topic %+v", tp)
		}
		if r.Rates.Scope != "instance" || r.Rates.WindowSeconds <= 0 || !strings.Contains(r.Rates.Note, "every instance") {
			t.Fatalf("rates %+v", r.Rates)
		}

		metrics := gather(t, s.Metrics())
		for _, m := range []struct {
			name   string
			labels map[string]string
			want   float64 // NaN: any value
		}{
			{"app_bus_handler_waiting_messages", map[string]string{"handler": "statstest.work", "topic": queued.Name()}, 3},
			{"app_bus_handler_pending_messages", map[string]string{"handler": "statstest.work", "topic": queued.Name()}, 2},
			{"app_bus_handler_oldest_unhandled_seconds", map[string]string{"handler": "statstest.work", "topic": queued.Name()}, math.NaN()},
			{"app_outbox_backlog_events", nil, 3},
			{"app_outbox_oldest_unforwarded_seconds", nil, math.NaN()},
			{"app_poison_messages", map[string]string{"topic": rejected.Name(), "handler": "statstest.refuse"}, 1},
			{"app_poison_messages", map[string]string{"topic": queued.Name(), "handler": "statstest.work"}, 0},
			{"app_stats_source_up", map[string]string{"source": "bus"}, 1},
			{"app_stats_source_up", map[string]string{"source": "outbox"}, 1},
			{"app_stats_source_up", map[string]string{"source": "poison"}, 1},
		} {
			got, ok := value(metrics, m.name, m.labels)
			if !ok || !math.IsNaN(m.want) && got != m.want {
				t.Errorf("%s%v = %v (found: %v), want %v", m.name, m.labels, got, ok, m.want)
			}
		}

		releaseOnce.Do(func() { close(release) })
		eventually(t, "the blocked handler caught up", func() bool {
			w := handler(t, s.Report(ctx), "statstest.work")
			return *w.Waiting == 0 && *w.Pending == 0 && *w.OldestUnhandledSeconds == 0 && w.RunsPerSecond != nil && *w.RunsPerSecond > 0
		})
		// The JSON names every field, nulls included.
		raw, err := json.Marshal(s.Report(ctx))
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{`"rates":{"scope":"instance"`, `"published_per_second":`, `"p95_seconds":`, `"depth_scope":"instance"`, `"oldest_unhandled_seconds":`, `"outbox":{"backlog":3`, `"by_handler":[`} {
			if !strings.Contains(string(raw), key) {
				t.Errorf("report JSON lacks %s: %s", key, raw)
			}
		}
	})
}

// TestReportWithoutRates is what `app stats` builds without a running
// instance: depths of a bus the handlers are not registered on.
func TestReportWithoutRates(t *testing.T) {
	d := dbtest.Open(t, db.DriverSQLite, poison.Migrations)
	cfg := bus.DefaultConfig()
	b, err := bus.New(context.Background(), cfg, bus.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	hs := []bus.Handler{bus.NewHandler("statstest.elsewhere", queued, func(context.Context, bus.Event[job]) error { return nil }, bus.Concurrency(3))}
	r := stats.Reader{Bus: b, Handlers: func() []bus.Handler { return hs }, Config: cfg, DB: d, Poison: poison.NewStore(d)}
	rep := r.Build(r.Read(context.Background()), nil)
	if rep.Rates != nil || len(rep.Errors) != 0 || rep.Outbox == nil || rep.Outbox.Backlog != 0 {
		t.Fatalf("report %+v", rep)
	}
	h := handler(t, rep, "statstest.elsewhere")
	if h.Concurrency != 3 || h.DepthScope != "none" || h.Waiting != nil || h.RunsPerSecond != nil || *h.Poisoned != 0 {
		t.Fatalf("handler %s", show(h))
	}

	noBroker := stats.Reader{BusErr: errors.New("bus: cannot connect"), Handlers: r.Handlers, Config: cfg, DB: d, Poison: r.Poison}
	if rep := noBroker.Build(noBroker.Read(context.Background()), nil); rep.Errors["bus"] != "bus: cannot connect" || rep.Outbox == nil || rep.Poison == nil {
		t.Fatalf("report without a broker %+v", rep)
	}
}

func handler(t *testing.T, r stats.Report, name string) stats.Handler {
	t.Helper()
	for _, h := range r.Handlers {
		if h.Handler == name {
			return h
		}
	}
	t.Fatalf("no handler %s in %+v", name, r.Handlers)
	return stats.Handler{}
}

func topic(t *testing.T, r stats.Report, name string) stats.Topic {
	t.Helper()
	for _, tp := range r.Topics {
		if tp.Topic == name {
			return tp
		}
	}
	t.Fatalf("no topic %s in %+v", name, r.Topics)
	return stats.Topic{}
}

func show(h stats.Handler) string {
	raw, _ := json.Marshal(h)
	return string(raw)
}

func gather(t *testing.T, g prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func value(mfs []*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == k && l.GetValue() == v
				}
				if !found {
					continue metrics
				}
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
