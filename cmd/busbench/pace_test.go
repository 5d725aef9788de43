package main

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestPacedStartsEachUnitOnceAndNeverEarly checks the schedule, not its
// precision: every unit runs exactly once, none before its due time, and
// each one's lateness is recorded.
func TestPacedStartsEachUnitOnceAndNeverEarly(t *testing.T) {
	const units = 300
	interval := 50 * time.Microsecond
	var (
		mu   sync.Mutex
		seen = map[int]int{}
		late histogram
	)
	// paced starts its clock after this one: a unit beginning before
	// start+u×interval began before its due time.
	start := time.Now()
	err := paced(context.Background(), 4, units, interval, &late, func(_ context.Context, u int) error {
		if due := start.Add(time.Duration(u) * interval); time.Now().Before(due) {
			t.Errorf("unit %d began before its due time", u)
		}
		mu.Lock()
		seen[u]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for u := range units {
		if seen[u] != 1 {
			t.Errorf("unit %d ran %d times", u, seen[u])
		}
	}
	var recorded int64
	for i := range late.counts {
		recorded += late.counts[i].Load()
	}
	if recorded != units {
		t.Errorf("lateness recorded for %d units, want %d", recorded, units)
	}
}

func TestPacedStopsOnTheFirstError(t *testing.T) {
	var calls sync.Map
	err := paced(context.Background(), 2, 1000, time.Microsecond, new(histogram), func(_ context.Context, u int) error {
		calls.Store(u, true)
		if u == 3 {
			return context.DeadlineExceeded
		}
		return nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the step's error", err)
	}
	n := 0
	calls.Range(func(any, any) bool { n++; return true })
	if n == 1000 {
		t.Error("every unit ran after a step failed")
	}
}
