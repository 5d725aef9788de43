package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is one row's system, set up and consuming: what the runner
// publishes into. Its handlers call the recorder once per event handled.
type target struct {
	// publish sends n events numbered from first, each stamped sent (unix
	// ns). Several publishers call it at once.
	publish func(ctx context.Context, first, n int, sent int64) error
	// flush waits until what publish sent is accepted (raw AMQP's
	// outstanding confirms); nil when publish returns only then.
	flush func(ctx context.Context) error
	// batch is how many events one publish call sends under flood (a
	// pipeline, a transaction), halfBatch at half rate; 1 when 0.
	batch, halfBatch int
	// perEvent is how many handler calls one event makes (16 for fanout16).
	perEvent int
	// open lets gated handlers run: the backlog rows publish everything
	// first and time only the handling. nil for live rows.
	open func()
	// close stops everything and removes what the row created on brokers
	// and databases.
	close func() error
}

// settings are the run-wide knobs the flags set.
type settings struct {
	n          int           // events per flood; 0: publish for duration
	duration   time.Duration // flood length when n is 0
	maxEvents  int           // cap of a duration-bound flood
	floodN     int           // events of the flood row
	floodTime  time.Duration // most time the flood row publishes
	half       time.Duration // length of the half-rate phase
	publishers int           // publishing goroutines
	sleepN     int           // events per concurrent slot in backlog rows
	stall      time.Duration // no handling progress for this long fails a row
}

// result is what one run of a row measured.
type result struct {
	row        row
	events     int     // published in the flood
	numbered   int     // one past the highest event number the flood used
	wanted     int     // events the flood row was asked for
	published  float64 // events/s while publishing
	handled    float64 // handler calls/s, from the first publish to the last handle
	flood      latencies
	half       latencies
	halfRate   float64       // events/s published in the half-rate phase, 0 if none
	halfLate   time.Duration // p99 of how late the paced publishes began
	rss        rss
	err        error
	hasLatency bool // the flood's latencies mean publish-to-handle
}

// callers is how many goroutines publish in the bus64 rows. bus.Publish
// returns once the broker confirmed the event, so one publisher has one
// event in flight and the publishing rate is at most the publishers over
// the confirm's latency; the raw rows keep hundreds in flight per
// publisher instead.
const callers = 64

// measure runs one row: flood (or backlog), then paced at half the handled
// rate, with peak RSS over both.
func measure(ctx context.Context, e *env, s settings, r row) (res result) {
	res.row = r
	if r.Kind == kindIdle {
		res.rss, res.err = idleRSS(ctx, e)
		return res
	}
	peak := startPeakRSS()
	defer func() { res.rss = peak.end() }()
	rec := newRecorder()
	t, err := setup(ctx, e, r, rec)
	if err != nil {
		res.err = err
		return res
	}
	defer func() {
		if err := t.close(); err != nil && res.err == nil {
			res.err = fmt.Errorf("close: %w", err)
		}
	}()
	t.batch, t.halfBatch, t.perEvent = max(t.batch, 1), max(t.halfBatch, 1), max(t.perEvent, 1)
	if r.Kind == kindCallers {
		s.publishers = callers
	}

	switch {
	case t.open != nil:
		n := s.sleepN * r.C
		if r.Kind == kindFanout {
			n = s.sleepN
		}
		res.err = backlog(ctx, s, t, rec, n, &res)
	case r.Kind == kindFlood:
		res.wanted = s.floodN
		res.err = flood(ctx, s, t, rec, s.floodN, 0, s.floodTime, &res)
		res.hasLatency = true
	default:
		if res.err = flood(ctx, s, t, rec, s.n, s.duration, 0, &res); res.err != nil {
			return res
		}
		res.hasLatency = true
		res.err = halfRate(ctx, s, t, rec, &res)
	}
	return res
}

// flood publishes n events (or for d) as fast as s.publishers goroutines
// can, and waits until every one is handled. Publishing stops at cut, if
// set, whatever n says.
func flood(ctx context.Context, s settings, t *target, rec *recorder, n int, d, cut time.Duration, res *result) error {
	limit := n
	if limit == 0 {
		limit = s.maxEvents
	}
	ph := rec.start()
	start := time.Now()
	var deadline time.Time
	if n == 0 {
		deadline = start.Add(d)
	}
	// numbered is one past the highest event number published: publishers
	// that stop early leave gaps below it.
	var next, sent, numbered atomic.Int64
	err := publishers(ctx, s.publishers, func(ctx context.Context) (bool, error) {
		first := int(next.Add(int64(t.batch))) - t.batch
		if first >= limit || (cut > 0 && time.Since(start) > cut) ||
			(!deadline.IsZero() && tooFar(start, d, sent.Load(), ph.handled.Load()/int64(t.perEvent))) {
			return false, nil
		}
		k := min(t.batch, limit-first)
		if err := t.publish(ctx, first, k, time.Now().UnixNano()); err != nil {
			return false, err
		}
		sent.Add(int64(k))
		for end := int64(first + k); ; {
			if n := numbered.Load(); end <= n || numbered.CompareAndSwap(n, end) {
				break
			}
		}
		return true, nil
	})
	if err == nil && t.flush != nil {
		err = t.flush(ctx)
	}
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	pubTime := time.Since(start)
	res.events, res.numbered = int(sent.Load()), int(numbered.Load())
	if res.events == 0 {
		return errors.New("published nothing")
	}
	if err := waitHandled(ctx, s, ph, int64(res.events*t.perEvent)); err != nil {
		return err
	}
	res.published = float64(res.events) / pubTime.Seconds()
	res.handled = float64(res.events*t.perEvent) / time.Duration(ph.last.Load()-start.UnixNano()).Seconds()
	res.flood = ph.hist.latencies()
	return nil
}

// tooFar tells a flood bounded by time d, started at start, to stop: when d
// is over, or, past d/2, when the backlog would take longer than d/2 to
// drain at the rate handled so far. The flood then stops early on a system
// that takes publishes much faster than it handles them, so the row does
// not spend a minute draining, while half of d leaves enough events that
// the start-up does not dominate the rates.
func tooFar(start time.Time, d time.Duration, sent, handled int64) bool {
	elapsed := time.Since(start)
	if elapsed >= d {
		return true
	}
	if elapsed < d/2 {
		return false
	}
	rate := float64(handled) / elapsed.Seconds()
	return float64(sent-handled) > rate*d.Seconds()/2
}

// backlog publishes n events to gated handlers, then opens the gate and
// times the handling alone: how handlers scale is then not bounded by how
// fast the broker takes publishes.
func backlog(ctx context.Context, s settings, t *target, rec *recorder, n int, res *result) error {
	rec.start()
	start := time.Now()
	var next atomic.Int64
	err := publishers(ctx, s.publishers, func(ctx context.Context) (bool, error) {
		first := int(next.Add(int64(t.batch))) - t.batch
		if first >= n {
			return false, nil
		}
		return true, t.publish(ctx, first, min(t.batch, n-first), time.Now().UnixNano())
	})
	if err == nil && t.flush != nil {
		err = t.flush(ctx)
	}
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	res.events = n
	res.published = float64(n) / time.Since(start).Seconds()
	// Let what was published reach the handlers' queues (a broker may
	// still be routing it) before the clock starts.
	time.Sleep(100 * time.Millisecond)
	ph := rec.start()
	opened := time.Now()
	t.open()
	// Handlers blocked at the gate before it opened record into this phase.
	if err := waitHandled(ctx, s, ph, int64(n*t.perEvent)); err != nil {
		return err
	}
	res.handled = float64(n*t.perEvent) / time.Duration(ph.last.Load()-opened.UnixNano()).Seconds()
	return nil
}

// halfRate publishes at half the flood's handled rate for s.half and keeps
// the latencies of that phase, and how late the publishers were.
func halfRate(ctx context.Context, s settings, t *target, rec *recorder, res *result) error {
	if s.half <= 0 || res.handled <= 0 {
		return nil
	}
	rate := res.handled / float64(t.perEvent) / 2
	n := max(int(rate*s.half.Seconds()), 2*t.halfBatch)
	n -= n % t.halfBatch
	interval := time.Duration(float64(time.Second) * float64(t.halfBatch) / rate)
	ph := rec.start()
	start := time.Now()
	var late histogram
	err := paced(ctx, s.publishers, n/t.halfBatch, interval, &late, func(ctx context.Context, unit int) error {
		// Numbered after the flood's events: event numbers are unique per row.
		return t.publish(ctx, res.numbered+unit*t.halfBatch, t.halfBatch, time.Now().UnixNano())
	})
	if err == nil && t.flush != nil {
		err = t.flush(ctx)
	}
	if err != nil {
		return fmt.Errorf("publish at half rate: %w", err)
	}
	// What the publishers reached: less than rate when they fell behind.
	res.halfRate = float64(n) / time.Since(start).Seconds()
	if err := waitHandled(ctx, s, ph, int64(n*t.perEvent)); err != nil {
		return fmt.Errorf("at half rate: %w", err)
	}
	res.half = ph.hist.latencies()
	res.halfLate = late.latencies().p99
	return nil
}

// publishers runs step on k goroutines until each returns false or one
// fails; the first error cancels the others.
func publishers(ctx context.Context, k int, step func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range k {
		wg.Go(func() {
			for ctx.Err() == nil {
				more, err := step(ctx)
				if err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				if !more {
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// waitHandled waits until the phase counted want handler calls, failing
// when the count stops moving for s.stall.
func waitHandled(ctx context.Context, s settings, ph *phase, want int64) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	last, moved := ph.handled.Load(), time.Now()
	for {
		got := ph.handled.Load()
		if got >= want {
			return nil
		}
		if got != last {
			last, moved = got, time.Now()
		} else if time.Since(moved) > s.stall {
			return fmt.Errorf("handled %d of %d, none for %s", got, want, s.stall)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// median combines the runs of one row: each figure is the median of that
// figure over the runs that succeeded.
func median(runs []result) result {
	var ok []result
	for _, r := range runs {
		if r.err == nil {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return runs[len(runs)-1]
	}
	out := ok[0]
	medF := func(get func(result) float64) float64 {
		v := make([]float64, len(ok))
		for i, r := range ok {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	medD := func(get func(result) time.Duration) time.Duration {
		return time.Duration(medF(func(r result) float64 { return float64(get(r)) }))
	}
	out.published = medF(func(r result) float64 { return r.published })
	out.handled = medF(func(r result) float64 { return r.handled })
	out.halfRate = medF(func(r result) float64 { return r.halfRate })
	out.flood = latencies{medD(func(r result) time.Duration { return r.flood.p50 }), medD(func(r result) time.Duration { return r.flood.p99 }), medD(func(r result) time.Duration { return r.flood.max })}
	out.half = latencies{medD(func(r result) time.Duration { return r.half.p50 }), medD(func(r result) time.Duration { return r.half.p99 }), medD(func(r result) time.Duration { return r.half.max })}
	out.halfLate = medD(func(r result) time.Duration { return r.halfLate })
	out.rss.bytes = uint64(medF(func(r result) float64 { return float64(r.rss.bytes) }))
	return out
}
