package bus

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

func TestWarmStacksReturnWhatTheChainReturns(t *testing.T) {
	w := newWarmStacks(1)
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
	before := runtime.NumGoroutine()
	w := newWarmStacks(50)
	if started := runtime.NumGoroutine() - before; started < 50 {
		t.Fatalf("%d workers started, want 50", started)
	}
	w.close()
	w.close() // idempotent
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after close, %d before the workers", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
