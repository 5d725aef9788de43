package console

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/example/monolith/platform/catalog"
)

// Metric names the flow reads from the process's registry.
const (
	handlerSecondsMetric = "app_bus_handler_execution_time_seconds"
	poisonedMetric       = "app_bus_poisoned_messages_total"
)

// rateWindow is how far back per-handler rates look.
const rateWindow = time.Minute

// flow is the map the Flow view draws: contexts, topics and handlers from
// the catalog, each handler with its counts from this process's metrics.
type flow struct {
	Contexts    []string      `json:"contexts"`
	PoisonTopic string        `json:"poison_topic"`
	Topics      []flowTopic   `json:"topics"`
	Handlers    []flowHandler `json:"handlers"`
	SampledAt   time.Time     `json:"sampled_at"`
	Window      float64       `json:"window_seconds"` // what rates cover; 0 before a second sample
}

type flowTopic struct {
	Name      string   `json:"name"`
	Context   string   `json:"context"`
	Version   int      `json:"version"`
	Payload   string   `json:"payload_type"`
	Consumers []string `json:"consumers"`
}

type flowHandler struct {
	Name        string `json:"name"`
	Context     string `json:"context"`
	Topic       string `json:"topic"`
	Broadcast   bool   `json:"broadcast"`
	Concurrency int    `json:"concurrency"`
	// Totals since the process started: runs that succeeded, runs that
	// failed (retries included) and deliveries poisoned.
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	Poisoned  uint64 `json:"poisoned"`
	// Rates over the window, per second; nil before a second sample.
	Rate      *float64 `json:"rate"`
	ErrorRate *float64 `json:"error_rate"`
}

// counts are a handler's totals at one moment.
type counts struct{ succeeded, failed, poisoned uint64 }

type sample struct {
	at     time.Time
	counts map[string]counts
}

// sampler reads the handlers' counts from the registry and keeps a
// minute of samples, at most one a second, to turn them into rates.
type sampler struct {
	gatherer prometheus.Gatherer

	mu      sync.Mutex
	samples []sample
}

// take gathers the counts now, and the sample the rates compare them to
// (zero when there is none yet).
func (s *sampler) take(now time.Time) (map[string]counts, sample, error) {
	families, err := s.gatherer.Gather()
	if err != nil {
		return nil, sample{}, fmt.Errorf("gather metrics: %w", err)
	}
	cur := map[string]counts{}
	for _, f := range families {
		switch f.GetName() {
		case handlerSecondsMetric:
			for _, m := range f.GetMetric() {
				name, success := label(m.GetLabel(), "handler_name"), label(m.GetLabel(), "success")
				c := cur[name]
				if success == "true" {
					c.succeeded += m.GetHistogram().GetSampleCount()
				} else {
					c.failed += m.GetHistogram().GetSampleCount()
				}
				cur[name] = c
			}
		case poisonedMetric:
			for _, m := range f.GetMetric() {
				name := label(m.GetLabel(), "handler")
				c := cur[name]
				c.poisoned += uint64(m.GetCounter().GetValue())
				cur[name] = c
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.samples) > 0 && now.Sub(s.samples[0].at) > rateWindow {
		s.samples = s.samples[1:]
	}
	var base sample
	if len(s.samples) > 0 {
		base = s.samples[0]
	}
	if len(s.samples) == 0 || now.Sub(s.samples[len(s.samples)-1].at) >= time.Second {
		s.samples = append(s.samples, sample{at: now, counts: cur})
	}
	return cur, base, nil
}

func label(labels []*dto.LabelPair, name string) string {
	for _, l := range labels {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// newFlow lays c out with the counts now and the rates since base.
func newFlow(c catalog.Catalog, now time.Time, cur map[string]counts, base sample) flow {
	f := flow{Contexts: c.Contexts(), PoisonTopic: c.PoisonTopic, SampledAt: now.UTC(), Topics: []flowTopic{}, Handlers: []flowHandler{}}
	elapsed := now.Sub(base.at).Seconds()
	rated := base.counts != nil && elapsed >= 0.5
	if rated {
		f.Window = elapsed
	}
	for _, t := range c.Topics {
		ft := flowTopic{Name: t.Name, Context: t.Context, Version: t.Version, Payload: t.PayloadType, Consumers: []string{}}
		for _, h := range c.ConsumersOf(t.Name) {
			ft.Consumers = append(ft.Consumers, h.Name)
		}
		f.Topics = append(f.Topics, ft)
	}
	for _, h := range c.Handlers {
		now := cur[h.Name]
		fh := flowHandler{
			Name: h.Name, Context: h.Context, Topic: h.Topic, Broadcast: h.Broadcast, Concurrency: h.Concurrency,
			Succeeded: now.succeeded, Failed: now.failed, Poisoned: now.poisoned,
		}
		if rated {
			then := base.counts[h.Name]
			rate := float64(now.succeeded-min(then.succeeded, now.succeeded)) / elapsed
			errRate := float64(now.failed-min(then.failed, now.failed)) / elapsed
			fh.Rate, fh.ErrorRate = &rate, &errRate
		}
		f.Handlers = append(f.Handlers, fh)
	}
	return f
}
