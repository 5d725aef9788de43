package bus

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

func TestWarmStacksReturnWhatTheChainReturns(t *testing.T) {
	w := newWarmStacks(1)
	w.start()
	defer w.close()
	failed := errors.New("failed")
	produced := []*message.Message{message.NewMessage(watermill.NewUUID(), nil)}
	h := w.middleware(func(msg *message.Message) ([]*message.Message, error) {
		if string(msg.Payload) == "fail" {
			return nil, failed
		}
		return produced, nil
	})
	for range 3 {
		out, err := h(message.NewMessage(watermill.NewUUID(), []byte("ok")))
		if err != nil || len(out) != 1 || out[0] != produced[0] {
			t.Fatalf("got %v, %v; want the produced message and no error", out, err)
		}
		if _, err := h(message.NewMessage(watermill.NewUUID(), []byte("fail"))); !errors.Is(err, failed) {
			t.Fatalf("got %v, want the chain's error", err)
		}
	}
}

// More messages in flight than workers: the extra ones run on the caller's
// goroutine instead of waiting for a worker.
func TestWarmStacksRunMessagesBeyondTheirWorkersInline(t *testing.T) {
	w := newWarmStacks(1)
	w.start()
	defer w.close()
	release := make(chan struct{})
	h := w.middleware(func(msg *message.Message) ([]*message.Message, error) {
		if string(msg.Payload) == "first" {
			<-release
		}
		return nil, nil
	})
	first := make(chan error, 1)
	go func() {
		_, err := h(message.NewMessage(watermill.NewUUID(), []byte("first")))
		first <- err
	}()
	// Once the first holds the one worker, the second must not wait for it.
	second := make(chan error, 1)
	go func() {
		for range 100 {
			if _, err := h(message.NewMessage(watermill.NewUUID(), []byte("second"))); err != nil {
				second <- err
				return
			}
		}
		second <- nil
	}()
	select {
	case err := <-second:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("messages waited for a busy worker")
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

func TestWarmStacksEndOnClose(t *testing.T) {
	w := newWarmStacks(3)
	w.start()
	w.close()
	w.close() // idempotent
	expectNoWorker(t, w, "after close")
}

func TestWarmStacksStartWorkersOnlyWhenStarted(t *testing.T) {
	w := newWarmStacks(2)
	defer w.close()
	expectNoWorker(t, w, "before start")
	w.start()
	w.start() // once
	j := &stackJob{h: func(*message.Message) ([]*message.Message, error) { return nil, nil }, done: make(chan struct{}, 1)}
	select {
	case w.jobs <- j:
		<-j.done
	case <-time.After(10 * time.Second):
		t.Fatal("no worker took a job after start")
	}
}

// expectNoWorker checks that no worker of w takes a job, and that the chain
// then runs on the caller's goroutine.
func expectNoWorker(t *testing.T, w *warmStacks, when string) {
	t.Helper()
	select {
	case w.jobs <- &stackJob{}:
		t.Fatalf("a worker took a job %s", when)
	case <-time.After(50 * time.Millisecond):
	}
	ran := false
	h := w.middleware(func(*message.Message) ([]*message.Message, error) { ran = true; return nil, nil })
	if _, err := h(message.NewMessage(watermill.NewUUID(), nil)); err != nil || !ran {
		t.Fatalf("%s the chain ran: %t, error %v; want it run on the caller's goroutine", when, ran, err)
	}
}
