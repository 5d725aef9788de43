package bus

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// countPublished wraps pub to count, by topic, the messages each
// successful Publish sent: app_bus_published_messages_total{topic}. The
// publish histogram (app_bus_publish_time_seconds) counts Publish calls and
// labels them from the message's context, which a message forwarded from
// the outbox or sent to the poison topic does not carry; this counts the
// topic each message was actually published to.
func countPublished(reg prometheus.Registerer, pub message.Publisher) (message.Publisher, error) {
	published := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "app", Subsystem: "bus", Name: "published_messages_total",
		Help: "Messages the broker accepted, by the topic they were published to.",
	}, []string{"topic"})
	if err := reg.Register(published); err != nil {
		return nil, err
	}
	return countingPublisher{pub, published}, nil
}

type countingPublisher struct {
	message.Publisher
	published *prometheus.CounterVec
}

func (p countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	p.published.WithLabelValues(topic).Add(float64(len(msgs)))
	return nil
}
