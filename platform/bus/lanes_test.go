package bus

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

func queuedFor(aggregate string) *message.Message {
	msg := message.NewMessage(aggregate, nil)
	msg.Metadata.Set(MetaAggregateID, aggregate)
	return msg
}

func TestLanesBlockPushWhileFull(t *testing.T) {
	q := newLanes(2)
	q.push(queuedFor("a"))
	q.push(queuedFor("b"))
	pushed := make(chan struct{})
	go func() { q.push(queuedFor("c")); close(pushed) }()
	select {
	case <-pushed:
		t.Fatal("push returned while the queue held its size")
	case <-time.After(50 * time.Millisecond):
	}
	l, msg, ok := q.next()
	if !ok || msg.UUID != "a" {
		t.Fatalf("next = %v, %v; want a", msg, ok)
	}
	select {
	case <-pushed:
		t.Fatal("push returned while the taken message was still being handled")
	case <-time.After(50 * time.Millisecond):
	}
	q.done(l)
	select {
	case <-pushed:
	case <-time.After(5 * time.Second):
		t.Fatal("push still blocked after a message was handled")
	}
}

func TestLanesStopReleasesABlockedPush(t *testing.T) {
	q := newLanes(1)
	q.push(queuedFor("a"))
	pushed := make(chan struct{})
	go func() { q.push(queuedFor("b")); close(pushed) }()
	q.stop()
	select {
	case <-pushed:
	case <-time.After(5 * time.Second):
		t.Fatal("push still blocked after the queue stopped")
	}
	if _, _, ok := q.next(); ok {
		t.Fatal("a stopped queue handed out a message")
	}
}
