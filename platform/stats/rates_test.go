package stats

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestQuantileInterpolatesAsPrometheusDoes(t *testing.T) {
	bounds := []float64{0.1, 0.5, 1, math.Inf(1)}
	for _, tt := range []struct {
		name       string
		cumulative []float64
		want       float64 // NaN: nil
	}{
		{"none", []float64{0, 0, 0, 0}, math.NaN()},
		{"all in the first bucket", []float64{10, 10, 10, 10}, 0.095},
		{"within the second", []float64{50, 100, 100, 100}, 0.1 + 0.4*(95.0-50)/50},
		{"beyond the last bound", []float64{0, 0, 0, 10}, 1},
	} {
		got := quantile(0.95, bounds, tt.cumulative)
		if math.IsNaN(tt.want) != (got == nil) || got != nil && math.Abs(*got-tt.want) > 1e-9 {
			t.Errorf("%s: quantile = %v, want %v", tt.name, deref(got), tt.want)
		}
	}
}

// TestWindowRates checks rates, error ratio and p95 between two samples of
// a registry, counting only what happened in between.
func TestWindowRates(t *testing.T) {
	reg := prometheus.NewRegistry()
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: handlerSeconds, Buckets: []float64{0.01, 0.1, 1}}, []string{"handler_name", "success", "topic"})
	publishes := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: publishSeconds}, []string{"success", "topic"})
	published := func(topic string, n int) {
		for range n {
			publishes.WithLabelValues("true", topic).Observe(0.001)
		}
	}
	reg.MustRegister(seconds, publishes)
	seconds.WithLabelValues("a.h", "true", "a.t.x").Observe(5) // before the window
	published("a.t.x", 7)
	publishes.WithLabelValues("false", "a.t.x").Observe(0.001) // failed: not published
	t0 := time.Now()
	from, err := takeSample(reg, t0)
	if err != nil {
		t.Fatal(err)
	}
	for range 18 {
		seconds.WithLabelValues("a.h", "true", "a.t.x").Observe(0.05)
	}
	seconds.WithLabelValues("a.h", "false", "a.t.x").Observe(0.5)
	seconds.WithLabelValues("a.h", "false", "a.t.x").Observe(0.5)
	published("a.t.x", 20)
	published("a.t.y", 4) // first published in the window
	to, err := takeSample(reg, t0.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w := window{from, to}
	perSecond, errorsPerSecond, ratio, p95 := w.handler("a.h")
	if *perSecond != 2 || *errorsPerSecond != 0.2 || *ratio != 0.1 {
		t.Fatalf("runs %v/s, errors %v/s, ratio %v", *perSecond, *errorsPerSecond, *ratio)
	}
	// 20 runs: 18 in (0.01, 0.1], 2 in (0.1, 1]; the 19th is in the third bucket.
	if want := 0.1 + 0.9*(19.0-18)/2; math.Abs(*p95-want) > 1e-9 {
		t.Fatalf("p95 %v, want %v", *p95, want)
	}
	if *w.published("a.t.x") != 2 || *w.published("a.t.y") != 0.4 || *w.published("a.t.z") != 0 {
		t.Fatalf("published %v %v %v", *w.published("a.t.x"), *w.published("a.t.y"), *w.published("a.t.z"))
	}
	if perSecond, _, ratio, p95 := w.handler("idle.h"); *perSecond != 0 || ratio != nil || p95 != nil {
		t.Fatalf("a handler without runs: %v, %v, %v", *perSecond, ratio, p95)
	}
}
