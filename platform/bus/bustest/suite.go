// Package bustest is the conformance suite every bus adapter passes: one set
// of tests for the semantics docs/bus.md promises, run against gochannel,
// AMQP and Redis Streams (and any adapter added later).
package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/testenv"
)

// Adapter describes the adapter under test and how to reach behind it.
type Adapter struct {
	// Config returns a fresh configuration selecting the adapter.
	Config func() bus.Config
	// Shared is true when separate Bus instances share the broker, as
	// separate processes would: competing consumers, durability, reconnect
	// and broadcast across instances are then tested.
	Shared bool
	// Ordered is true when one consumer handles a topic's events in publish order.
	Ordered bool
	// AggregateOrder is true when a handler with a concurrency above 1 still
	// handles the events of one aggregate in publish order, one at a time.
	AggregateOrder bool
	// OrderedHandlers is true when the adapter honours bus.Ordered for a
	// handler that is not broadcast; when false, registering one must fail.
	OrderedHandlers bool
	// PatternsBeyondDeclared is true when a pattern handler gets every
	// topic its pattern matches, declared in the binary or not (AMQP's
	// bindings, gochannel); false when it reads the declared topics only
	// and registering a pattern that matches none fails.
	PatternsBeyondDeclared bool
	// InjectRaw writes body straight into the broker on topic, as another
	// program would, bypassing Watermill. Nil when there is no broker.
	InjectRaw func(t testing.TB, topic string, body []byte)
	// DropConnections makes the broker drop every client connection.
	DropConnections func(t testing.TB)
	// Cleanup removes the broker state of the given topics and handlers.
	Cleanup func(topics, handlers []string)
}

// Item is the payload of the suite's events.
type Item struct {
	N   int    `json:"n"`
	Tag string `json:"tag"`
}

// Run runs the whole suite against a.
func Run(t *testing.T, a Adapter) {
	tests := []struct {
		name string
		fn   func(*testing.T, *suite)
	}{
		{"FanOut", testFanOut},
		{"CompetingConsumers", testCompetingConsumers},
		{"RetryWithBackoff", testRetry},
		{"PoisonAfterRetries", testPoison},
		{"PanicIsRecovered", testPanic},
		{"UndecodableAndPermanentArePoisonedAtOnce", testUndecodable},
		{"HandlerTimeout", testTimeout},
		{"Order", testOrder},
		{"PublishBatch", testPublishBatch},
		{"Concurrency", testConcurrency},
		{"AggregateOrderUnderConcurrency", testAggregateOrder},
		{"OrderedHandler", testOrderedHandler},
		{"Durability", testDurability},
		{"Reconnect", testReconnect},
		{"GracefulClose", testGracefulClose},
		{"Broadcast", testBroadcast},
		{"Depths", testDepths},
		{"Patterns", testPatterns},
		{"PatternRegistration", testPatternRegistration},
		{"PatternRetryAndPoison", testPatternRetryAndPoison},
		{"Delayed", testDelayed},
		{"DelayedSurvivesRestart", testDelayedSurvivesRestart},
		{"RetryAfter", testRetryAfter},
		{"RescheduleBeyond", testRescheduleBeyond},
		{"ReplayHistory", testReplayHistory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &suite{t: t, a: a, id: randomID()}
			t.Cleanup(s.cleanup)
			tt.fn(t, s)
		})
	}
}

// suite holds one test's names, so tests never see each other's events.
type suite struct {
	t        *testing.T
	a        Adapter
	id       string
	mu       sync.Mutex
	topics   []string
	handlers []string
}

func randomID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// topic declares a topic unique to this test.
func (s *suite) topic(verb string) bus.Topic[Item] {
	t := bus.NewTopic[Item](fmt.Sprintf("conformance.t%s.%s", s.id, verb), 1)
	s.mu.Lock()
	s.topics = append(s.topics, t.Name())
	s.mu.Unlock()
	return t
}

// handlerName returns a handler name unique to this test.
func (s *suite) handlerName(action string) string {
	name := fmt.Sprintf("conformance.%s-%s", action, s.id)
	s.mu.Lock()
	s.handlers = append(s.handlers, name)
	s.mu.Unlock()
	return name
}

func (s *suite) config() bus.Config {
	cfg := s.a.Config()
	cfg.PoisonTopic = fmt.Sprintf("conformance.t%s.poisoned", s.id)
	s.topics = append(s.topics, cfg.PoisonTopic)
	cfg.Retry = bus.RetryConfig{MaxRetries: 2, InitialInterval: 10 * time.Millisecond, Multiplier: 2, MaxInterval: 100 * time.Millisecond}
	cfg.CloseTimeout = 10 * time.Second
	cfg.HandlerTimeout = 10 * time.Second
	return cfg
}

// start builds a bus with cfg and handlers, starts it and closes it at the
// end of the test.
func (s *suite) start(cfg bus.Config, reg prometheus.Registerer, hs ...bus.Handler) *bus.Bus {
	s.t.Helper()
	logger := slog.New(slog.NewTextHandler(testenv.Output(s.t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := bus.New(context.Background(), cfg, bus.Options{Registerer: reg, Logger: logger})
	if err != nil {
		s.t.Fatalf("new bus: %v", err)
	}
	s.t.Cleanup(func() { _ = b.Close() })
	if err := b.Register(hs...); err != nil {
		s.t.Fatalf("register: %v", err)
	}
	if err := b.Start(context.Background()); err != nil {
		s.t.Fatalf("start: %v", err)
	}
	return b
}

func (s *suite) publish(p bus.Publisher, topic bus.Topic[Item], items ...Item) {
	s.t.Helper()
	for _, it := range items {
		if err := bus.Publish(context.Background(), p, topic, fmt.Sprint(it.N), it); err != nil {
			s.t.Fatalf("publish %v: %v", it, err)
		}
	}
}

func (s *suite) cleanup() {
	if s.a.Cleanup != nil {
		s.a.Cleanup(s.topics, s.handlers)
	}
}

func items(n int) []Item {
	out := make([]Item, n)
	for i := range out {
		out[i] = Item{N: i}
	}
	return out
}

// recorder collects what handlers received.
type recorder struct {
	mu     sync.Mutex
	events []bus.Event[Item]
	by     map[string]int // handled count by event id
}

func newRecorder() *recorder { return &recorder{by: map[string]int{}} }

func (r *recorder) add(e bus.Event[Item]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	r.by[e.EventID]++
}

func (r *recorder) handle(_ context.Context, e bus.Event[Item]) error {
	r.add(e)
	return nil
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// ns is the set of item numbers received, whatever the duplicates.
func (r *recorder) ns() map[int]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[int]bool, len(r.events))
	for _, e := range r.events {
		seen[e.Payload.N] = true
	}
	return seen
}

func (r *recorder) snapshot() []bus.Event[Item] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bus.Event[Item](nil), r.events...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stays checks that cond keeps holding for d (nothing more arrives).
func stays(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// poisonSink records what reaches the poison topic.
type poisonSink struct {
	mu  sync.Mutex
	got []bus.PoisonedMessage
}

func (p *poisonSink) handler(s *suite) bus.Handler {
	return bus.NewPoisonHandler(s.handlerName("poison-sink"), func(_ context.Context, m bus.PoisonedMessage) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.got = append(p.got, m)
		return nil
	})
}

func (p *poisonSink) all() []bus.PoisonedMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]bus.PoisonedMessage(nil), p.got...)
}

var errTransient = errors.New("transient failure")

// rawMessage is a message with no envelope and an undecodable payload.
func rawMessage(body string) *message.Message {
	return message.NewMessage(randomID(), []byte(body))
}
