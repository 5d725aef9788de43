package stats

import (
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metric families the rates come from, as the bus registers them.
const (
	handlerSeconds = "app_bus_handler_execution_time_seconds"
	publishSeconds = "app_bus_publish_time_seconds"
)

// sample is the counters rates are computed from, at one time.
type sample struct {
	at        time.Time
	handlers  map[string]runs    // by handler name
	published map[string]float64 // by topic
}

// runs is one handler's histogram, successes and failures together.
type runs struct {
	count, failed float64
	bounds        []float64 // bucket upper bounds, the last +Inf
	cumulative    []float64 // runs at or below each bound
}

// takeSample reads the counters from g.
func takeSample(g prometheus.Gatherer, at time.Time) (sample, error) {
	s := sample{at: at, handlers: map[string]runs{}, published: map[string]float64{}}
	families, err := g.Gather()
	if err != nil && len(families) == 0 {
		return sample{}, err
	}
	for _, f := range families {
		switch f.GetName() {
		case publishSeconds:
			for _, m := range f.GetMetric() {
				if label(m, "success") == "true" {
					s.published[label(m, "topic")] += float64(m.GetHistogram().GetSampleCount())
				}
			}
		case handlerSeconds:
			for _, m := range f.GetMetric() {
				name, h := label(m, "handler_name"), m.GetHistogram()
				r := s.handlers[name]
				if r.bounds == nil {
					for _, b := range h.GetBucket() {
						r.bounds = append(r.bounds, b.GetUpperBound())
					}
					r.bounds = append(r.bounds, math.Inf(1))
					r.cumulative = make([]float64, len(r.bounds))
				}
				n := float64(h.GetSampleCount())
				r.count += n
				if label(m, "success") == "false" {
					r.failed += n
				}
				for i, b := range h.GetBucket() {
					if i < len(r.cumulative)-1 {
						r.cumulative[i] += float64(b.GetCumulativeCount())
					}
				}
				r.cumulative[len(r.cumulative)-1] += n
				s.handlers[name] = r
			}
		}
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// sampler keeps a ring of samples taken every interval, spanning span, so
// that a report has two samples to compute rates from.
type sampler struct {
	g        prometheus.Gatherer
	interval time.Duration
	span     time.Duration

	mu   sync.Mutex
	ring []sample // oldest first
	stop chan struct{}
	done chan struct{}
}

func newSampler(g prometheus.Gatherer, interval, span time.Duration) *sampler {
	return &sampler{g: g, interval: interval, span: span}
}

// start takes the first sample and keeps sampling until stop.
func (s *sampler) start() {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	s.take()
	go func() {
		defer close(s.done)
		tick := time.NewTicker(s.interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				s.take()
			case <-s.stop:
				return
			}
		}
	}()
}

func (s *sampler) close() {
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
}

func (s *sampler) take() {
	now := time.Now()
	smp, err := takeSample(s.g, now)
	if err != nil {
		return // the next tick tries again; a report falls back on older samples
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring = append(s.ring, smp)
	for len(s.ring) > 1 && now.Sub(s.ring[0].at) > s.span {
		s.ring = s.ring[1:]
	}
}

// window is the rates between the oldest sample of the ring and now; nil
// when there is none at least minWindow old.
func (s *sampler) window() *window {
	now := time.Now()
	s.mu.Lock()
	var base *sample
	if len(s.ring) > 0 {
		base = &s.ring[0]
	}
	s.mu.Unlock()
	if base == nil || now.Sub(base.at) < minWindow {
		return nil
	}
	last, err := takeSample(s.g, now)
	if err != nil {
		return nil
	}
	return &window{from: *base, to: last}
}

// minWindow is the shortest window rates are given for.
const minWindow = time.Second

// window is what happened between two samples.
type window struct{ from, to sample }

func (w *window) seconds() float64 { return w.to.at.Sub(w.from.at).Seconds() }

func (w *window) published(topic string) *float64 {
	return ptr(max(w.to.published[topic]-w.from.published[topic], 0) / w.seconds())
}

// topics are the topics published to, by name.
func (w *window) topics() []string {
	var names []string
	for name := range w.to.published {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// handler is the handler's runs and errors per second, its error ratio and
// the 95th percentile of its durations; the last two are nil without runs.
func (w *window) handler(name string) (perSecond, errorsPerSecond, errorRatio, p95 *float64) {
	to, from := w.to.handlers[name], w.from.handlers[name]
	n, failed := max(to.count-from.count, 0), max(to.failed-from.failed, 0)
	perSecond, errorsPerSecond = ptr(n/w.seconds()), ptr(failed/w.seconds())
	if n == 0 {
		return perSecond, errorsPerSecond, nil, nil
	}
	delta := slices.Clone(to.cumulative)
	if len(from.cumulative) == len(delta) {
		for i := range delta {
			delta[i] -= from.cumulative[i]
		}
	}
	return perSecond, errorsPerSecond, ptr(failed / n), quantile(0.95, to.bounds, delta)
}

// quantile estimates the q-quantile of the observations counted in
// cumulative buckets, as Prometheus's histogram_quantile does: linearly
// within the bucket it falls in, and the highest finite bound when it falls
// in the last, unbounded one.
func quantile(q float64, bounds, cumulative []float64) *float64 {
	if len(bounds) < 2 || len(cumulative) != len(bounds) || cumulative[len(cumulative)-1] <= 0 {
		return nil
	}
	rank := q * cumulative[len(cumulative)-1]
	lower, below := 0.0, 0.0
	for i, upper := range bounds {
		if cumulative[i] < rank {
			lower, below = upper, cumulative[i]
			continue
		}
		switch in := cumulative[i] - below; {
		case i == len(bounds)-1:
			return ptr(lower) // the highest finite bound
		case in <= 0:
			return ptr(upper)
		default:
			return ptr(lower + (upper-lower)*(rank-below)/in)
		}
	}
	return nil
}

func hostname() string {
	name, _ := os.Hostname()
	return name
}
