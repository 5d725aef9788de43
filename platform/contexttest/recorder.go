package contexttest

import (
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// recorder keeps every message the bus publishes, by topic, and what the
// test has read of each topic.
type recorder struct {
	mu      sync.Mutex
	topics  map[string][]*message.Message
	read    map[string]int
	changed chan struct{} // closed, and replaced, on every record
}

func newRecorder() *recorder {
	return &recorder{topics: map[string][]*message.Message{}, read: map[string]int{}, changed: make(chan struct{})}
}

// wrap is the bus's bus.Options.WrapPublisher.
func (r *recorder) wrap(pub message.Publisher) message.Publisher {
	return recordingPublisher{Publisher: pub, r: r}
}

func (r *recorder) add(topic string, msgs []*message.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.topics[topic] = append(r.topics[topic], msgs...)
	close(r.changed)
	r.changed = make(chan struct{})
}

// next returns the first unread message of topic, waiting up to d for one.
func (r *recorder) next(topic string, d time.Duration) (*message.Message, bool) {
	timeout := time.After(d)
	for {
		r.mu.Lock()
		if i := r.read[topic]; i < len(r.topics[topic]) {
			r.read[topic]++
			msg := r.topics[topic][i]
			r.mu.Unlock()
			return msg, true
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			return nil, false
		}
	}
}

// recordingPublisher records what its publisher accepted.
type recordingPublisher struct {
	message.Publisher
	r *recorder
}

func (p recordingPublisher) Publish(topic string, msgs ...*message.Message) error {
	// Copied before publishing: adapters may change the messages they send.
	copies := make([]*message.Message, len(msgs))
	for i, msg := range msgs {
		copies[i] = msg.Copy()
	}
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	p.r.add(topic, copies)
	return nil
}
