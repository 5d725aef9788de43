package bus

import (
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// warmStacks runs a handler's middleware chain on goroutines that live from
// the bus's Start to its Close, one per unit of the handler's concurrency.
//
// Watermill's router starts a goroutine per message. A new goroutine's stack
// starts at the process's average stack size, well below what the chain and
// the JSON decoder reach, and grows by copying itself, frame by frame, a few
// times per message: on gochannel that was 15 % of the CPU spent per event
// (BenchmarkBus, see docs/benchmarks.md). A worker's stack grows once.
// A message that finds every worker busy, or none started, runs on the
// router's goroutine, as it would without them. The workers start with the
// bus, so a bus that is built and never started runs none.
type warmStacks struct {
	n       int
	jobs    chan *stackJob
	stop    chan struct{}
	started sync.Once
	stopped sync.Once
	workers sync.WaitGroup
}

type stackJob struct {
	h    message.HandlerFunc
	msg  *message.Message
	out  []*message.Message
	err  error
	done chan struct{}
}

var stackJobs = sync.Pool{New: func() any { return &stackJob{done: make(chan struct{}, 1)} }}

func newWarmStacks(n int) *warmStacks {
	return &warmStacks{n: n, jobs: make(chan *stackJob), stop: make(chan struct{})}
}

// start starts the workers, once.
func (w *warmStacks) start() {
	w.started.Do(func() {
		for range w.n {
			w.workers.Go(w.work)
		}
	})
}

func (w *warmStacks) work() {
	for {
		select {
		case j := <-w.jobs:
			j.out, j.err = j.h(j.msg)
			j.done <- struct{}{}
		case <-w.stop:
			return
		}
	}
}

// middleware hands the rest of the chain to an idle worker and waits for it.
func (w *warmStacks) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		j := stackJobs.Get().(*stackJob)
		j.h, j.msg = h, msg
		select {
		case w.jobs <- j:
			<-j.done
		default:
			j.out, j.err = h(msg)
		}
		out, err := j.out, j.err
		*j = stackJob{done: j.done}
		stackJobs.Put(j)
		return out, err
	}
}

// close ends the workers, once the router no longer runs the chain, and
// waits for them.
func (w *warmStacks) close() {
	w.stopped.Do(func() { close(w.stop) })
	w.workers.Wait()
}
