package bustest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// poisonedCount reads app_bus_poisoned_messages_total{topic,handler}.
func poisonedCount(t *testing.T, reg *prometheus.Registry, topic, handler string) float64 {
	t.Helper()
	for _, m := range family(t, reg, "app_bus_poisoned_messages_total") {
		if label(m, "topic") == topic && label(m, "handler") == handler {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// assertHandlerMetrics checks Watermill's handler and publish metrics exist
// for handler with non-zero counts.
func assertHandlerMetrics(t *testing.T, reg *prometheus.Registry, handler string) {
	t.Helper()
	var runs uint64
	for _, m := range family(t, reg, "app_bus_handler_execution_time_seconds") {
		if label(m, "handler_name") == handler {
			runs += m.GetHistogram().GetSampleCount()
		}
	}
	if runs == 0 {
		t.Fatalf("no app_bus_handler_execution_time_seconds samples for %s", handler)
	}
	var published uint64
	for _, m := range family(t, reg, "app_bus_publish_time_seconds") {
		if label(m, "topic") != "" {
			published += m.GetHistogram().GetSampleCount()
		}
	}
	if published == 0 {
		t.Fatal("no app_bus_publish_time_seconds samples labelled with a topic")
	}
}

func family(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
