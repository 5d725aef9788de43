package bus

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// handlerMetrics times handler attempts into the histogram components/metrics
// defines (same name, help, buckets and labels, so its dashboards work).
// That package's middleware builds a label map and looks the series up on
// every message; here each handler resolves its two series once, at
// registration.
type handlerMetrics struct{ seconds *prometheus.HistogramVec }

func newHandlerMetrics(reg prometheus.Registerer) (handlerMetrics, error) {
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "app", Subsystem: "bus", Name: "handler_execution_time_seconds",
		Help:    "The total time elapsed while executing the handler function in seconds",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
	}, []string{"handler_name", "success", "topic"})
	if err := reg.Register(seconds); err != nil {
		return handlerMetrics{}, err
	}
	return handlerMetrics{seconds}, nil
}

func (m handlerMetrics) middleware(h Handler) message.HandlerMiddleware {
	ok := m.seconds.WithLabelValues(h.name, "true", h.topic)
	failed := m.seconds.WithLabelValues(h.name, "false", h.topic)
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			start := time.Now()
			out, err := next(msg)
			if err != nil {
				failed.Observe(time.Since(start).Seconds())
			} else {
				ok.Observe(time.Since(start).Seconds())
			}
			return out, err
		}
	}
}

// publishMetrics times publishes into the histogram components/metrics'
// publisher decorator defines (same name, help, buckets, labels and series,
// so its dashboards work). That decorator builds a label map, looks the
// series up and wraps each message's context on every publish, a fifth of
// the CPU of a publish on gochannel; here each series is looked up once.
type publishMetrics struct {
	message.Publisher
	seconds *prometheus.HistogramVec
	name    string   // publisher_name outside handlers, as the decorator names it
	series  sync.Map // publishSeries -> prometheus.Observer
}

type publishSeries struct {
	handler, publisher, topic string
	ok                        bool
}

func newPublishMetrics(reg prometheus.Registerer, pub message.Publisher) (*publishMetrics, error) {
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "app", Subsystem: "bus", Name: "publish_time_seconds",
		Help:    "The time that a publishing attempt (success or not) took in seconds",
		Buckets: prometheus.DefBuckets,
	}, []string{"handler_name", "publisher_name", "success", "topic"})
	if err := reg.Register(seconds); err != nil {
		return nil, err
	}
	return &publishMetrics{Publisher: pub, seconds: seconds, name: strings.TrimLeft(fmt.Sprintf("%T", pub), "*")}, nil
}

func (m *publishMetrics) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return m.Publisher.Publish(topic)
	}
	ctx := msgs[0].Context()
	start := time.Now()
	err := m.Publisher.Publish(topic, msgs...)
	m.observer(publishSeries{message.HandlerNameFromCtx(ctx), message.PublisherNameFromCtx(ctx), topic, err == nil}).
		Observe(time.Since(start).Seconds())
	return err
}

func (m *publishMetrics) observer(k publishSeries) prometheus.Observer {
	if o, ok := m.series.Load(k); ok {
		return o.(prometheus.Observer)
	}
	handler, publisher := k.handler, k.publisher
	if handler == "" {
		handler = "<no handler>"
	}
	if publisher == "" {
		publisher = m.name
	}
	o, _ := m.series.LoadOrStore(k, m.seconds.WithLabelValues(handler, publisher, strconv.FormatBool(k.ok), k.topic))
	return o.(prometheus.Observer)
}
