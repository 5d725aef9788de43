package console

import (
	"fmt"
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

// flow is the map the Flow view draws: contexts, topics and handlers from
// the catalog, each handler with its totals from this process's metrics.
// Rates and lag are the stats report's (GET /api/ops/stats), which the
// page reads beside it.
type flow struct {
	Contexts    []string      `json:"contexts"`
	PoisonTopic string        `json:"poison_topic"`
	Topics      []flowTopic   `json:"topics"`
	Handlers    []flowHandler `json:"handlers"`
	SampledAt   time.Time     `json:"sampled_at"`
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
}

// counts are a handler's totals at one moment.
type counts struct{ succeeded, failed, poisoned uint64 }

// countsNow reads every handler's totals from g.
func countsNow(g prometheus.Gatherer) (map[string]counts, error) {
	families, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather metrics: %w", err)
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
	return cur, nil
}

func label(labels []*dto.LabelPair, name string) string {
	for _, l := range labels {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// newFlow lays c out with the totals cur, read at now.
func newFlow(c catalog.Catalog, now time.Time, cur map[string]counts) flow {
	f := flow{Contexts: c.Contexts(), PoisonTopic: c.PoisonTopic, SampledAt: now.UTC(), Topics: []flowTopic{}, Handlers: []flowHandler{}}
	for _, t := range c.Topics {
		ft := flowTopic{Name: t.Name, Context: t.Context, Version: t.Version, Payload: t.PayloadType, Consumers: []string{}}
		for _, h := range c.ConsumersOf(t.Name) {
			ft.Consumers = append(ft.Consumers, h.Name)
		}
		f.Topics = append(f.Topics, ft)
	}
	for _, h := range c.Handlers {
		n := cur[h.Name]
		f.Handlers = append(f.Handlers, flowHandler{
			Name: h.Name, Context: h.Context, Topic: h.Topic, Broadcast: h.Broadcast, Concurrency: h.Concurrency,
			Succeeded: n.succeeded, Failed: n.failed, Poisoned: n.poisoned,
		})
	}
	return f
}
