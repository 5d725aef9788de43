package main

import (
	"context"
	"time"
)

// paced calls step for units 0 to units-1, unit u falling due interval×u
// after the start, on k publishing goroutines. One pacer hands each unit
// out at its due time; a unit no publisher is free to take waits for one.
// late records how long after its due time each unit's step began.
func paced(ctx context.Context, k, units int, interval time.Duration, late *histogram, step func(ctx context.Context, unit int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	due := func(u int) time.Time { return start.Add(time.Duration(u) * interval) }
	ready := make(chan int, units)
	go func() {
		defer close(ready)
		for u := range units {
			sleepUntil(due(u))
			if ctx.Err() != nil {
				return
			}
			ready <- u
		}
	}()
	return publishers(ctx, k, func(ctx context.Context) (bool, error) {
		select {
		case u, ok := <-ready:
			if !ok {
				return false, nil
			}
			late.record(time.Since(due(u)))
			return true, step(ctx, u)
		case <-ctx.Done():
			return false, nil
		}
	})
}

// sleepUntil returns at t, within tens of microseconds. time.Sleep cannot:
// when every goroutine is parked, the runtime waits in epoll with a
// timeout in whole milliseconds (netpoll_epoll.go rounds anything shorter
// up to 1 ms), so a pacer sleeping 30 µs at a time wakes about 1 ms late
// and publishes a millisecond of events back to back. Long waits use
// time.Sleep, the last milliseconds a thread's nanosleep.
func sleepUntil(t time.Time) {
	for {
		wait := time.Until(t)
		switch {
		case wait <= 0:
			return
		case wait > 2*time.Millisecond:
			time.Sleep(wait - time.Millisecond)
		default:
			nanosleep(wait)
		}
	}
}
