package bustest

import (
	"context"
	"fmt"
	"testing"

	"github.com/example/monolith/platform/bus"
)

// testDepths checks that Bus.Depths counts what waits for a handler: on a
// broker, events published while the handler is stopped, read by another
// instance; on gochannel, events queued behind a blocked handler. Once the
// handler caught up, nothing waits. A broadcast handler's queue is never
// reported as shared.
func testDepths(t *testing.T, s *suite) {
	const k = 5
	topic := s.topic("queued")
	name := s.handlerName("backlogged")
	r := newRecorder()
	handler := bus.NewHandler(name, topic, r.handle)
	broadcast := bus.NewHandler(s.handlerName("everywhere"), topic, func(context.Context, bus.Event[Item]) error { return nil }, bus.Broadcast())
	depth := func(b *bus.Bus, h bus.Handler) bus.HandlerDepth {
		t.Helper()
		ds, err := b.DepthsOf(context.Background(), []bus.Handler{h})
		if err != nil {
			t.Fatalf("depths: %v", err)
		}
		if len(ds) != 1 || ds[0].Handler != h.Name() || ds[0].Topic != topic.Name() {
			t.Fatalf("depths of %s = %+v", h.Name(), ds)
		}
		return ds[0]
	}
	cfg := s.config()

	var reader *bus.Bus // reads the handler's depth
	if s.a.Shared {
		// Stopped: the handler's queue or group exists and fills up.
		if err := s.start(cfg, nil, handler).Close(); err != nil {
			t.Fatalf("stop the handler: %v", err)
		}
		reader = s.start(cfg, nil)
		s.publish(reader, topic, items(k)...)
		eventually(t, wait, fmt.Sprintf("%d events waiting for the stopped handler", k), func() bool {
			d := depth(reader, handler)
			return d.Waiting != nil && *d.Waiting == k
		})
		d := depth(reader, handler)
		// Consumers stay nil or not, as the adapter tells: a Redis group
		// keeps the stopped consumer for a while.
		if d.Scope != bus.DepthShared || d.Consumers == nil {
			t.Fatalf("stopped handler: %s", show(d))
		}
		if d.Pending != nil && *d.Pending != 0 || d.Oldest != nil && *d.Oldest < 0 {
			t.Fatalf("stopped handler: %s", show(d))
		}
		s.start(cfg, nil, handler)
	} else {
		// Blocked: one event in flight, the others queued behind it.
		release := make(chan struct{})
		blocked := bus.NewHandler(name, topic, func(ctx context.Context, e bus.Event[Item]) error {
			<-release
			return r.handle(ctx, e)
		})
		reader = s.start(cfg, nil, blocked, broadcast)
		s.publish(reader, topic, items(k)...)
		eventually(t, wait, fmt.Sprintf("%d events waiting or in flight for the blocked handler", k), func() bool {
			d := depth(reader, blocked)
			return d.Waiting != nil && d.Pending != nil && *d.Waiting+*d.Pending == k && *d.Pending == 1
		})
		if d := depth(reader, blocked); d.Scope != bus.DepthInstance || d.Oldest == nil || *d.Oldest < 0 {
			t.Fatalf("blocked handler: %s", show(d))
		}
		// Another process's queues are out of reach.
		if d := depth(s.start(cfg, nil), blocked); d.Scope != bus.DepthNone || d.Waiting != nil {
			t.Fatalf("a handler registered elsewhere: %s", show(d))
		}
		close(release)
		handler = blocked
	}

	eventually(t, wait, "the handler catches up", func() bool { return r.len() == k })
	eventually(t, wait, "nothing waits once the handler caught up", func() bool {
		d := depth(reader, handler)
		return *d.Waiting == 0 && (d.Pending == nil || *d.Pending == 0) && (d.Oldest == nil || *d.Oldest == 0)
	})

	// A broadcast handler's queue belongs to its instance.
	own := s.start(cfg, nil, broadcast)
	if s.a.Shared {
		if d := depth(reader, broadcast); d.Scope != bus.DepthNone || d.Waiting != nil {
			t.Fatalf("broadcast handler of another instance: %s", show(d))
		}
	}
	if d := depth(own, broadcast); d.Scope == bus.DepthShared || (d.Scope == bus.DepthNone) != (d.Waiting == nil) {
		t.Fatalf("broadcast handler of this instance: %s", show(d))
	}
}

func show(d bus.HandlerDepth) string {
	str := func(p *int64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	oldest := "nil"
	if d.Oldest != nil {
		oldest = d.Oldest.String()
	}
	return fmt.Sprintf("scope %s, waiting %s, pending %s, oldest %s, consumers %s", d.Scope, str(d.Waiting), str(d.Pending), oldest, str(d.Consumers))
}
