package bus

import (
	"context"
	"runtime"
	"testing"
	"time"
)

type valueKey struct{}

func TestDetachedKeepsValuesAndTakesCancellation(t *testing.T) {
	values, cancelValues := context.WithCancel(context.WithValue(context.Background(), valueKey{}, "v"))
	abort, abortFn := context.WithCancel(context.Background())
	ctx := context.WithValue(detached{abort, values}, attemptsKey{}, 1)

	if got := ctx.Value(valueKey{}); got != "v" {
		t.Fatalf("value of the values context = %v, want v", got)
	}
	child, cancelChild := context.WithTimeout(ctx, time.Hour)
	defer cancelChild()
	cancelValues()
	if child.Err() != nil {
		t.Fatalf("the values context's cancellation reached the child: %v", child.Err())
	}
	abortFn()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the abort did not cancel a WithTimeout child")
	}
}

// Watermill's Timeout middleware wraps every message's context in
// context.WithTimeout; under a parent it cannot see through, the context
// package starts a goroutine per message to watch it.
func TestDetachedChildrenStartNoGoroutine(t *testing.T) {
	abort, abortFn := context.WithCancel(context.Background())
	defer abortFn()
	parent := context.WithValue(detached{abort, context.Background()}, attemptsKey{}, 1)

	const children = 1000
	before := runtime.NumGoroutine()
	cancels := make([]context.CancelFunc, 0, children)
	for range children {
		_, cancel := context.WithTimeout(parent, time.Hour)
		cancels = append(cancels, cancel)
	}
	grew := runtime.NumGoroutine() - before
	for _, cancel := range cancels {
		cancel()
	}
	if grew > children/10 {
		t.Fatalf("%d WithTimeout children of a detached context started %d goroutines", children, grew)
	}
}
