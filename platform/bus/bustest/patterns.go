package bustest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
)

// patternRecorder collects what a pattern handler received of the test's
// own topics: on a shared broker a pattern such as `#` also matches what
// other tests publish.
type patternRecorder struct {
	mine map[string]bool // the test's topics

	mu      sync.Mutex
	byTopic map[string]int
	by      map[string]int // by event id
}

func newPatternRecorder(topics ...bus.Topic[Item]) *patternRecorder {
	r := &patternRecorder{mine: map[string]bool{}, byTopic: map[string]int{}, by: map[string]int{}}
	for _, t := range topics {
		r.mine[t.Name()] = true
	}
	return r
}

func (r *patternRecorder) handle(_ context.Context, e bus.RawEvent) error {
	r.add(e)
	return nil
}

func (r *patternRecorder) add(e bus.RawEvent) {
	if !r.mine[e.EventType] {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byTopic[e.EventType]++
	r.by[e.EventID]++
}

func (r *patternRecorder) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.byTopic)
}

func (r *patternRecorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.byTopic {
		n += c
	}
	return n
}

// pattern records a pattern handler, so that the adapter's cleanup also
// covers what it subscribed to on other tests' topics.
func (s *suite) pattern(name, pattern string, fn func(context.Context, bus.RawEvent) error, opts ...bus.HandlerOption) bus.Handler {
	s.mu.Lock()
	for _, t := range bus.Topics() {
		if bus.Match(pattern, t.Name) && !slices.Contains(s.topics, t.Name) {
			s.topics = append(s.topics, t.Name)
		}
	}
	s.mu.Unlock()
	return bus.NewPatternHandler(name, pattern, fn, opts...)
}

// testPatterns: a pattern handler gets exactly the events of the topics its
// pattern matches, each once, beside the exact handlers of those topics, and
// never a message on its way to the poison topic (which `#` and
// `<context>.<aggregate>.*` match by name).
func testPatterns(t *testing.T, s *suite) {
	opened, closed, moved := s.topic("opened"), s.topic("closed"), s.topic("moved")
	agg := strings.Split(opened.Name(), ".")[1] // this test's aggregate segment
	cases := []struct {
		pattern string
		want    map[string]int
	}{
		{"*." + agg + ".closed", map[string]int{closed.Name(): 10}},
		{"conformance." + agg + ".*", map[string]int{opened.Name(): 20, closed.Name(): 10}},
		{"#." + agg + ".opened", map[string]int{opened.Name(): 20}},             // # at the start
		{"conformance." + agg + ".#.opened", map[string]int{opened.Name(): 20}}, // # in the middle, matching zero segments
		{"conformance." + agg + ".#", map[string]int{opened.Name(): 20, closed.Name(): 10}},
		{"#", map[string]int{opened.Name(): 20, closed.Name(): 10}},
		{"*." + agg + ".moved", map[string]int{}}, // matches a topic nothing is published on
		{"conformance." + agg + ".opened.*", nil}, // matches no topic at all: registration fails on redisstream
	}
	var (
		hs        []bus.Handler
		recorders []*patternRecorder
	)
	sink := &poisonSink{}
	exact := newRecorder()
	hs = append(hs, sink.handler(s), bus.NewHandler(s.handlerName("exact"), opened, func(ctx context.Context, e bus.Event[Item]) error {
		if e.Payload.Tag == "bad" {
			return bus.Permanent(fmt.Errorf("item %d is bad", e.Payload.N))
		}
		return exact.handle(ctx, e)
	}))
	for i, c := range cases {
		if c.want == nil && !s.a.PatternsBeyondDeclared {
			continue
		}
		r := newPatternRecorder(opened, closed, moved)
		recorders = append(recorders, r)
		hs = append(hs, s.pattern(s.handlerName(fmt.Sprintf("pattern%d", i)), c.pattern, r.handle))
	}
	bs := s.start(s.config(), nil, hs...)
	// Interleaved, so that one handler sees both topics at once.
	for i := range 20 {
		it := Item{N: i}
		if i == 0 {
			it.Tag = "bad" // poisoned by the exact handler
		}
		s.publish(bs, opened, it)
		if i < 10 {
			s.publish(bs, closed, Item{N: i})
		}
	}

	eventually(t, wait, "every pattern handler gets the events it matches", func() bool {
		for i, r := range recorders {
			if r.total() < total(cases[i].want) {
				return false
			}
		}
		return len(sink.all()) == 1 && exact.len() == 19
	})
	stays(t, time.Second, "nothing more arrives", func() bool {
		for i, r := range recorders {
			if r.total() != total(cases[i].want) {
				return false
			}
		}
		return len(sink.all()) == 1
	})
	for i, r := range recorders {
		want := cases[i].want
		if want == nil {
			want = map[string]int{}
		}
		if got := r.counts(); !maps.Equal(got, want) {
			t.Errorf("pattern %s got %v, want %v", cases[i].pattern, got, want)
		}
		for id, n := range r.by {
			if n != 1 {
				t.Errorf("pattern %s got event %s %d times", cases[i].pattern, id, n)
			}
		}
	}
}

func total(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// testPatternRegistration: a malformed pattern is refused, and on an
// adapter that reads declared topics only, so is one matching none.
func testPatternRegistration(t *testing.T, s *suite) {
	b, err := bus.New(context.Background(), s.config(), bus.Options{})
	if err != nil {
		t.Fatalf("new bus: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	noop := func(context.Context, bus.RawEvent) error { return nil }
	for _, p := range []string{"identity.user.created", "identity.*x", "Identity.#", "identity..#", ""} {
		err := b.Register(bus.NewPatternHandler(s.handlerName("malformed"), p, noop))
		if err == nil || !strings.Contains(err.Error(), "is not a topic pattern") {
			t.Errorf("pattern %q: err = %v, want it refused as not a topic pattern", p, err)
		}
	}
	err = b.Register(s.pattern(s.handlerName("nothing"), "conformance.t"+s.id+".nothing.*", noop))
	switch {
	case s.a.PatternsBeyondDeclared && err != nil:
		t.Fatalf("a pattern matching no declared topic: %v, want it registered (the broker matches what is published)", err)
	case !s.a.PatternsBeyondDeclared && (err == nil || !strings.Contains(err.Error(), "matches no topic this binary declares")):
		t.Fatalf("a pattern matching no declared topic: err = %v, want it refused", err)
	}
}

// testPatternRetryAndPoison: a pattern handler's failures are retried with
// backoff and then poisoned as an exact handler's are, the poisoned message
// naming the event's own topic, so that a replay reaches it.
func testPatternRetryAndPoison(t *testing.T, s *suite) {
	opened, closed := s.topic("opened"), s.topic("closed")
	name := s.handlerName("flaky-pattern")
	sink := &poisonSink{}
	r := newPatternRecorder(opened, closed)
	var mu sync.Mutex
	attempts := map[int]int{}
	h := s.pattern(name, "conformance.t"+s.id+".*", func(ctx context.Context, e bus.RawEvent) error {
		ev, ok, err := bus.As(e, closed)
		if !ok {
			return r.handle(ctx, e) // opened
		}
		if err != nil {
			return err
		}
		mu.Lock()
		attempts[ev.Payload.N]++
		n := attempts[ev.Payload.N]
		mu.Unlock()
		switch {
		case ev.Payload.Tag == "bad":
			return fmt.Errorf("item %d: %w", ev.Payload.N, errTransient)
		case n < 2:
			return errTransient // the first attempt fails, the retry succeeds
		}
		return r.handle(ctx, e)
	})
	bs := s.start(s.config(), nil, sink.handler(s), h)
	s.publish(bs, closed, Item{N: 0, Tag: "bad"}, Item{N: 1})
	s.publish(bs, opened, Item{N: 2})

	eventually(t, wait, "the bad event is poisoned, the others handled", func() bool {
		return len(sink.all()) == 1 && r.total() == 2
	})
	p := sink.all()[0]
	if p.Topic != closed.Name() || p.Handler != name || p.Attempts != 3 {
		t.Fatalf("poisoned message = topic %q handler %q attempts %d; want %q, %q, 3 (1 + 2 retries)", p.Topic, p.Handler, p.Attempts, closed.Name(), name)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts[1] != 2 {
		t.Fatalf("the event failing once ran %d times, want 2", attempts[1])
	}
	if got := r.counts(); got[opened.Name()] != 1 || got[closed.Name()] != 1 {
		t.Fatalf("handled %v, want one event of each topic", got)
	}
}
