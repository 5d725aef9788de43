package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts publish-to-handle durations in log-linear buckets, as
// HdrHistogram does: 32 buckets per power of two, so a percentile is off by
// at most 1/32 (3 %), while recording costs two atomic adds and no
// allocation, whatever the count. max is exact.
type histogram struct {
	counts [64 * subBuckets]atomic.Int64
	max    atomic.Int64
}

const (
	subBits    = 5
	subBuckets = 1 << subBits
)

func bucketOf(ns int64) int {
	if ns < subBuckets {
		return int(max(ns, 0))
	}
	exp := bits.Len64(uint64(ns)) - 1 // >= subBits
	return (exp-subBits+1)*subBuckets + int(ns>>(exp-subBits))&(subBuckets-1)
}

// lowOf is the smallest duration bucketOf puts in bucket i.
func lowOf(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	exp := i/subBuckets + subBits - 1
	return int64(subBuckets+i%subBuckets) << (exp - subBits)
}

func (h *histogram) record(d time.Duration) {
	ns := int64(d)
	h.counts[bucketOf(ns)].Add(1)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			return
		}
	}
}

// quantile is the duration below which the fraction q of samples fall: the
// middle of its bucket, capped at the exact maximum.
func (h *histogram) quantile(q float64) time.Duration {
	var total int64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total-1)) + 1
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			mid := (lowOf(i) + lowOf(i+1)) / 2
			return time.Duration(min(mid, h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// latencies are the percentiles a row reports for one phase.
type latencies struct{ p50, p99, max time.Duration }

func (h *histogram) latencies() latencies {
	return latencies{h.quantile(0.50), h.quantile(0.99), time.Duration(h.max.Load())}
}

// recorder is what every handler under test calls once per event it
// handles, with the time the event was published. It counts per phase: a
// phase starts a fresh count and histogram, so a straggler of the flood is
// never taken for a paced event.
type recorder struct{ cur atomic.Pointer[phase] }

type phase struct {
	handled atomic.Int64
	last    atomic.Int64 // unix ns of the latest handle
	hist    histogram
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cur.Store(&phase{})
	return r
}

// start begins a new phase and returns it.
func (r *recorder) start() *phase {
	p := &phase{}
	r.cur.Store(p)
	return p
}

// record counts one handled event published at sent (unix ns).
func (r *recorder) record(sent int64) {
	p := r.cur.Load()
	now := time.Now().UnixNano()
	p.hist.record(time.Duration(now - sent))
	p.handled.Add(1)
	for {
		last := p.last.Load()
		if now <= last || p.last.CompareAndSwap(last, now) {
			return
		}
	}
}
