package bus

import (
	"testing"
	"time"
)

func TestLanesDepthCountsQueuedAndInFlight(t *testing.T) {
	q := newLanes(8)
	if waiting, inflight, oldest := q.depth(); waiting != 0 || inflight != 0 || !oldest.IsZero() {
		t.Fatalf("empty queue: %d waiting, %d in flight, oldest %v", waiting, inflight, oldest)
	}
	before := time.Now()
	q.push(queuedFor("a"))
	q.push(queuedFor("a"))
	q.push(queuedFor("b"))
	l, _, _ := q.next() // a's first, in flight
	waiting, inflight, oldest := q.depth()
	if waiting != 2 || inflight != 1 || oldest.Before(before) || oldest.After(time.Now()) {
		t.Fatalf("%d waiting, %d in flight, oldest %v (pushed from %v)", waiting, inflight, oldest, before)
	}
	q.done(l)
	for range 2 {
		l, _, _ := q.next()
		q.done(l)
	}
	if waiting, inflight, oldest := q.depth(); waiting != 0 || inflight != 0 || !oldest.IsZero() {
		t.Fatalf("drained queue: %d waiting, %d in flight, oldest %v", waiting, inflight, oldest)
	}
}

func TestParseRedisGroupInfo(t *testing.T) {
	resp3 := map[any]any{"name": "g", "consumers": int64(2), "pending": int64(3), "last-delivered-id": "5-0", "entries-read": nil, "lag": int64(4)}
	resp2 := []any{"name", "g", "consumers", int64(2), "pending", int64(3), "last-delivered-id", "5-0"} // Redis 6.2: no lag
	unknown := map[any]any{"name": "g", "lag": nil}
	for name, tt := range map[string]struct {
		reply any
		lag   int64 // -1: nil
	}{"resp3": {resp3, 4}, "redis 6.2": {resp2, -1}, "lag unknown": {unknown, -1}} {
		g := parseRedisGroupInfo(tt.reply)
		if g.name != "g" || (tt.lag == -1) != (g.lag == nil) || g.lag != nil && *g.lag != tt.lag {
			t.Errorf("%s: %+v", name, g)
		}
		if name != "lag unknown" && (g.consumers != 2 || g.pending != 3 || g.lastDelivered != "5-0") {
			t.Errorf("%s: %+v", name, g)
		}
	}
	if got := redisIDTime("1700000000123-7"); !got.Equal(time.UnixMilli(1700000000123)) {
		t.Errorf("redisIDTime = %v", got)
	}
}
