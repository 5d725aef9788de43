package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
)

// stubPublisher fails the topic "fail".
type stubPublisher struct{}

func (stubPublisher) Publish(topic string, _ ...*message.Message) error {
	if topic == "fail" {
		return errors.New("refused")
	}
	return nil
}

func (stubPublisher) Close() error { return nil }

// referenceTopicKey carries the topic to components/metrics' label
// function, which sees only the message's context.
type referenceTopicKey struct{}

// publishMetrics must write the series components/metrics' publisher
// decorator writes, labelled with the topic published to, so that
// dashboards built on it keep working.
func TestPublishMetricsWriteWhatComponentsMetricsWrites(t *testing.T) {
	theirs := prometheus.NewRegistry()
	mb := metrics.NewPrometheusMetricsBuilderWithConfig(theirs, metrics.PrometheusMetricsBuilderConfig{
		Namespace: "app", Subsystem: "bus",
		AdditionalLabels: []metrics.MetricLabel{{Label: "topic", ComputeValueFn: func(ctx context.Context) string {
			return ctx.Value(referenceTopicKey{}).(string)
		}}},
	})
	reference, err := mb.DecoratePublisher(stubPublisher{})
	if err != nil {
		t.Fatal(err)
	}
	ours := prometheus.NewRegistry()
	metered, err := newPublishMetrics(ours, stubPublisher{})
	if err != nil {
		t.Fatal(err)
	}

	inHandler := handlerContext(t)
	publishes := []struct {
		ctx   context.Context
		topic string
	}{
		{context.Background(), "a.b.c"},
		{context.Background(), "fail"},
		{inHandler, "d.e.f"},
		{inHandler, "fail"},
	}
	for _, pub := range []message.Publisher{reference, metered} {
		for _, p := range publishes {
			for range 2 {
				msg := message.NewMessage(watermill.NewUUID(), nil)
				msg.SetContext(context.WithValue(p.ctx, referenceTopicKey{}, p.topic))
				_ = pub.Publish(p.topic, msg)
			}
		}
	}
	want, got := series(t, theirs), series(t, ours)
	if !slices.Equal(got, want) {
		t.Fatalf("series:\n got %v\nwant %v", got, want)
	}
	if len(want) < 4 {
		t.Fatalf("only %d series: the publishes did not cover the labels", len(want))
	}
}

// handlerContext is the context Watermill's router gives a handler's
// message, which carries the handler's and its publisher's names.
func handlerContext(t *testing.T) context.Context {
	t.Helper()
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan context.Context, 1)
	router.AddConsumerHandler("test.handler", "in", pubsub, func(msg *message.Message) error {
		select {
		case got <- msg.Context():
		default:
		}
		return nil
	})
	go func() { _ = router.Run(context.Background()) }()
	t.Cleanup(func() { _ = router.Close() })
	<-router.Running()
	if err := pubsub.Publish("in", message.NewMessage(watermill.NewUUID(), nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case ctx := <-got:
		return context.WithoutCancel(ctx)
	case <-time.After(10 * time.Second):
		t.Fatal("the router handled nothing")
		return nil
	}
}

// series lists app_bus_publish_time_seconds's series in reg with their
// sample counts.
func series(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "app_bus_publish_time_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			buckets := len(m.GetHistogram().GetBucket())
			out = append(out, fmt.Sprintf("{%s} count=%d buckets=%d", strings.Join(labels, ","), m.GetHistogram().GetSampleCount(), buckets))
		}
	}
	slices.Sort(out)
	return out
}
