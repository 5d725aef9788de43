package bus

import (
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
