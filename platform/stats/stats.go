// Package stats tells operators how the event flow is doing: per topic,
// how fast events are published and how many wait; per handler, how fast
// and how well it runs, how long it takes (p95), how many events wait for
// it, how many it holds unacked, how old the oldest is, and its
// concurrency; the outbox backlog; the poison store's counts.
//
// Depths, backlog and poison counts come from the broker and the database,
// so any instance (or `app stats` on an operator's machine) reads the same
// numbers for the whole deployment. Rates, error rates and durations come
// from the Prometheus counters of the process that serves the report: they
// are that instance's. Fleet-wide rates need every instance's /metrics, as
// Prometheus scrapes them.
//
// The serving app exposes the report at GET /api/ops/stats and the depths,
// backlog and poison counts as metrics on /metrics, both on the admin
// listener; docs/operations.md lists them.
package stats

import (
	"context"
	"sync"
	"time"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/poison"
)

// Report is the answer of GET /api/ops/stats and what `app stats` prints.
// A null number is one that could not be read or that the adapter cannot
// tell; Errors says what failed.
type Report struct {
	At time.Time `json:"at"`
	// Adapter is bus.adapter.
	Adapter string `json:"adapter"`
	// Rates says where the rates come from; null when no running instance
	// computed them (`app stats` without --admin).
	Rates    *Rates    `json:"rates"`
	Topics   []Topic   `json:"topics"`
	Handlers []Handler `json:"handlers"`
	// Outbox is null when it could not be read.
	Outbox *Outbox `json:"outbox"`
	// Poison is null when it could not be read.
	Poison *Poison `json:"poison"`
	// Errors names what could not be read (bus, outbox, poison) and why.
	Errors map[string]string `json:"errors,omitempty"`
}

// Rates describes the window per-second rates and durations cover.
type Rates struct {
	// Scope is "instance": the rates are the serving process's own.
	Scope string `json:"scope"`
	// Instance is the serving process's host name.
	Instance string `json:"instance"`
	// WindowSeconds is how far back the rates look: up to a minute, less
	// just after start-up.
	WindowSeconds float64 `json:"window_seconds"`
	Note          string  `json:"note"`
}

// rateNote is said wherever rates are shown.
const rateNote = "rates, error rates and durations are this instance's; for the fleet, scrape every instance's /metrics"

// Topic is one topic's publish rate and depth.
type Topic struct {
	Topic string `json:"topic"`
	// PublishedPerSecond is how many events of the topic this instance
	// published per second (app_bus_publish_time_seconds, success="true").
	PublishedPerSecond *float64 `json:"published_per_second"`
	// Waiting is the sum of its handlers' Waiting (each handler's queue
	// holds its own copy of an event); null when none is known.
	Waiting *int64 `json:"waiting"`
	// Handlers are the handlers of the topic.
	Handlers []string `json:"handlers"`
}

// Handler is one handler's rates, durations and depth.
type Handler struct {
	Handler   string `json:"handler"`
	Topic     string `json:"topic"`
	Broadcast bool   `json:"broadcast"`
	// Concurrency is how many events it handles at once per instance.
	Concurrency int `json:"concurrency"`
	// RunsPerSecond counts handler runs (every attempt: a retried event
	// counts once per attempt), ErrorsPerSecond the failed ones, ErrorRatio
	// their share, P95Seconds the 95th percentile of a run's duration over
	// the window (app_bus_handler_execution_time_seconds); null without
	// rates or without a run in the window.
	RunsPerSecond   *float64 `json:"runs_per_second"`
	ErrorsPerSecond *float64 `json:"errors_per_second"`
	ErrorRatio      *float64 `json:"error_ratio"`
	P95Seconds      *float64 `json:"p95_seconds"`
	// DepthScope is whose queue Waiting, Pending and Oldest describe:
	// "shared" (the broker's, every instance's), "instance" (this
	// process's own) or "none" (nothing readable: the numbers are null).
	DepthScope string `json:"depth_scope"`
	// Waiting is the events not yet delivered to a consumer: its lag.
	Waiting *int64 `json:"waiting"`
	// Pending is the events delivered and not acked yet (null on AMQP).
	Pending *int64 `json:"pending"`
	// OldestUnhandledSeconds is the age of the oldest event waiting or
	// pending: 0 when none (null on AMQP).
	OldestUnhandledSeconds *float64 `json:"oldest_unhandled_seconds"`
	// Consumers is how many consumers its queue or group has.
	Consumers *int64 `json:"consumers"`
	// Poisoned is how many of its messages the poison store holds.
	Poisoned *int64 `json:"poisoned"`
}

// Outbox is the outbox backlog.
type Outbox struct {
	// Backlog is how many committed events the relay has not forwarded.
	Backlog int64 `json:"backlog"`
	// OldestUnforwardedSeconds is how long the oldest of them has waited;
	// 0 when none.
	OldestUnforwardedSeconds float64 `json:"oldest_unforwarded_seconds"`
}

// Poison is what the poison store holds.
type Poison struct {
	Total int64 `json:"total"`
	// ByHandler counts the messages per original topic and handler.
	ByHandler []PoisonCount `json:"by_handler"`
}

// PoisonCount is how many messages of one topic one handler gave up on.
type PoisonCount struct {
	Topic    string `json:"topic"`
	Handler  string `json:"handler"`
	Messages int64  `json:"messages"`
}

// Sources of a [Shared] read, as Errors names them.
const (
	SourceBus    = "bus"
	SourceOutbox = "outbox"
	SourcePoison = "poison"
)

// Reader reads what is the same from every instance: depths from the
// broker, the outbox backlog and the poison counts from the database.
type Reader struct {
	// Bus reads the depths; nil when the broker could not be reached
	// (BusErr says why).
	Bus    *bus.Bus
	BusErr error
	// Handlers lists the application's handlers.
	Handlers func() []bus.Handler
	// Config is the bus configuration: concurrency and the poison topic.
	Config bus.Config
	DB     *db.DB
	Poison *poison.Store
}

// Shared is what a [Reader] read.
type Shared struct {
	At      time.Time
	Depths  []bus.HandlerDepth // nil when unread
	Backlog *outbox.Backlog
	Poison  []poison.Count // nil when unread
	// Errors are the sources that failed.
	Errors map[string]error
}

// Read reads the three sources at once, each until ctx ends.
func (r Reader) Read(ctx context.Context) Shared {
	s := Shared{Errors: map[string]error{}}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	fail := func(source string, err error) {
		mu.Lock()
		defer mu.Unlock()
		s.Errors[source] = err
	}
	wg.Go(func() {
		if r.Bus == nil {
			fail(SourceBus, r.BusErr)
			return
		}
		ds, err := r.Bus.DepthsOf(ctx, r.Handlers())
		if err != nil {
			fail(SourceBus, err)
			return
		}
		s.Depths = ds
	})
	wg.Go(func() {
		b, err := outbox.ReadBacklog(ctx, r.DB)
		if err != nil {
			fail(SourceOutbox, err)
			return
		}
		s.Backlog = &b
	})
	wg.Go(func() {
		counts, err := r.Poison.Counts(ctx)
		if err != nil {
			fail(SourcePoison, err)
			return
		}
		if counts == nil {
			counts = []poison.Count{}
		}
		s.Poison = counts
	})
	wg.Wait()
	s.At = time.Now()
	return s
}

// Build assembles the report from what r read and, when rates is not nil,
// the rates of the serving instance.
func (r Reader) Build(shared Shared, rates *window) Report {
	rep := Report{At: shared.At.UTC(), Adapter: r.Config.Adapter, Topics: []Topic{}, Handlers: []Handler{}}
	if len(shared.Errors) > 0 {
		rep.Errors = map[string]string{}
		for source, err := range shared.Errors {
			rep.Errors[source] = err.Error()
		}
	}
	if rates != nil {
		rep.Rates = &Rates{Scope: "instance", Instance: hostname(), WindowSeconds: rates.seconds(), Note: rateNote}
	}

	depths := map[string]bus.HandlerDepth{}
	for _, d := range shared.Depths {
		depths[d.Handler] = d
	}
	poisoned := map[string]int64{}
	if shared.Poison != nil {
		rep.Poison = &Poison{ByHandler: []PoisonCount{}}
		for _, c := range shared.Poison {
			rep.Poison.Total += c.Messages
			rep.Poison.ByHandler = append(rep.Poison.ByHandler, PoisonCount(c))
			poisoned[c.Handler] += c.Messages
		}
	}
	if b := shared.Backlog; b != nil {
		rep.Outbox = &Outbox{Backlog: b.Events, OldestUnforwardedSeconds: b.Oldest.Seconds()}
	}

	topics := map[string]*Topic{}
	topic := func(name string) *Topic {
		if topics[name] == nil {
			topics[name] = &Topic{Topic: name, Handlers: []string{}}
			if rates != nil {
				topics[name].PublishedPerSecond = rates.published(name)
			}
		}
		return topics[name]
	}
	for _, t := range bus.Topics() {
		topic(t.Name)
	}
	topic(r.Config.PoisonTopic)
	if rates != nil {
		for _, name := range rates.topics() {
			topic(name) // published, but declared by no package of this binary
		}
	}
	for _, h := range r.Handlers() {
		name, topicName := h.Name(), h.Topic()
		if h.ConsumesPoison() {
			topicName = r.Config.PoisonTopic
		}
		concurrency, err := r.Config.ConcurrencyOf(h)
		if err != nil {
			concurrency = h.Concurrency() // registration refused it already
		}
		hs := Handler{Handler: name, Topic: topicName, Broadcast: h.IsBroadcast(), Concurrency: concurrency}
		if rates != nil {
			hs.RunsPerSecond, hs.ErrorsPerSecond, hs.ErrorRatio, hs.P95Seconds = rates.handler(name)
		}
		if d, ok := depths[name]; ok {
			hs.DepthScope = string(d.Scope)
			hs.Waiting, hs.Pending, hs.Consumers = d.Waiting, d.Pending, d.Consumers
			if d.Oldest != nil {
				hs.OldestUnhandledSeconds = ptr(d.Oldest.Seconds())
			}
		}
		if shared.Poison != nil {
			hs.Poisoned = ptr(poisoned[name])
		}
		rep.Handlers = append(rep.Handlers, hs)

		if h.IsPattern() {
			// Its waiting events are of several topics, not told apart.
			for tn, t := range topics {
				if tn != r.Config.PoisonTopic && h.Consumes(tn) {
					t.Handlers = append(t.Handlers, name)
				}
			}
			continue
		}
		t := topic(topicName)
		t.Handlers = append(t.Handlers, name)
		if hs.Waiting != nil {
			t.Waiting = ptr(*hs.Waiting + deref(t.Waiting))
		}
	}
	for _, t := range topics {
		rep.Topics = append(rep.Topics, *t)
	}
	sortReport(&rep)
	return rep
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
