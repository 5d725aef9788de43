package stats

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/monolith/platform/bus"
)

// The metrics the serving app's /metrics adds; docs/operations.md
// explains them. Series the adapter cannot tell are left out.
var (
	waitingDesc = prometheus.NewDesc("app_bus_handler_waiting_messages",
		"Messages not yet delivered to a consumer of the handler (its lag).", []string{"handler", "topic"}, nil)
	pendingDesc = prometheus.NewDesc("app_bus_handler_pending_messages",
		"Messages delivered to a consumer of the handler and not acked yet (not on AMQP).", []string{"handler", "topic"}, nil)
	oldestDesc = prometheus.NewDesc("app_bus_handler_oldest_unhandled_seconds",
		"Age of the handler's oldest message waiting or pending; 0 when none (not on AMQP).", []string{"handler", "topic"}, nil)
	consumersDesc = prometheus.NewDesc("app_bus_handler_consumers",
		"Consumers of the handler's queue or consumer group (not on gochannel).", []string{"handler", "topic"}, nil)
	backlogDesc = prometheus.NewDesc("app_outbox_backlog_events",
		"Committed outbox events the relay has not forwarded yet.", nil, nil)
	unforwardedDesc = prometheus.NewDesc("app_outbox_oldest_unforwarded_seconds",
		"How long the oldest unforwarded outbox event has waited; 0 when none.", nil, nil)
	poisonDesc = prometheus.NewDesc("app_poison_messages",
		"Messages in the poison store, by original topic and handler.", []string{"topic", "handler"}, nil)
	upDesc = prometheus.NewDesc("app_stats_source_up",
		"1 if the last read of the source (bus, outbox, poison) succeeded, else 0.", []string{"source"}, nil)
)

// collector reads the broker and the database on scrape, through the
// service's short-lived cache and timeout.
type collector struct{ s *Service }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{waitingDesc, pendingDesc, oldestDesc, consumersDesc, backlogDesc, unforwardedDesc, poisonDesc, upDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	shared := c.s.read(context.Background())
	for _, source := range []string{SourceBus, SourceOutbox, SourcePoison} {
		up := 1.0
		if shared.Errors[source] != nil {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, source)
	}
	for _, d := range shared.Depths {
		if d.Scope == bus.DepthNone {
			continue
		}
		gauge := func(desc *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, d.Handler, d.Topic)
		}
		if d.Waiting != nil {
			gauge(waitingDesc, float64(*d.Waiting))
		}
		if d.Pending != nil {
			gauge(pendingDesc, float64(*d.Pending))
		}
		if d.Oldest != nil {
			gauge(oldestDesc, d.Oldest.Seconds())
		}
		if d.Consumers != nil {
			gauge(consumersDesc, float64(*d.Consumers))
		}
	}
	if b := shared.Backlog; b != nil {
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(b.Events))
		ch <- prometheus.MustNewConstMetric(unforwardedDesc, prometheus.GaugeValue, b.Oldest.Seconds())
	}
	if shared.Poison == nil {
		return
	}
	// Every handler has a series, 0 while the store holds nothing of it.
	type key struct{ topic, handler string }
	counts := map[key]int64{}
	for _, p := range shared.Poison {
		counts[key{p.Topic, p.Handler}] = p.Messages
	}
	for _, h := range c.s.reader.Handlers() {
		if k := (key{h.Topic(), h.Name()}); !h.ConsumesPoison() {
			counts[k] += 0
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(poisonDesc, prometheus.GaugeValue, float64(n), k.topic, k.handler)
	}
}
