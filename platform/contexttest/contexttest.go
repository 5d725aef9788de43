// Package contexttest runs a bounded context's fx.Module in a test the way
// the binary runs it, on the in-process bus and a database of its own, and
// records every event published on the bus.
//
//	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
//		err := bus.Publish(ctx, h.Bus, topics.UserRegistered, "u1", topics.UserRegisteredV1{UserID: "u1"})
//		...
//		created := contexttest.Next(t, h, topics.CustomerCreated)
//		r := h.Do(t, "GET", "/api/customers/"+created.Payload.CustomerID, nil)
//		...
//	}, customer.Module)
//
// Extra fx options given with the modules apply to the whole application,
// e.g. fx.Decorate(func(c bus.Config) bus.Config { c.Retry.MaxRetries = 0; return c }).
// A module's private services are out of reach: a test in the context's
// own packages builds one on h.DB when it needs to call a use case directly.
package contexttest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/example/monolith/platform/app"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/testenv"
)

const (
	// wait bounds Next and Eventually.
	wait = 10 * time.Second
	// quiet is how long None watches: the relay polls the outbox and
	// gochannel delivers asynchronously, so absence can only be observed
	// over time (several relay poll intervals here).
	quiet = 500 * time.Millisecond
)

// Harness is one running application made of the platform and the modules
// under test.
type Harness struct {
	// DB is the application's database, migrated.
	DB *db.DB
	// Bus is the application's started bus; publish on it to drive handlers.
	Bus *bus.Bus
	// URL is the base URL of the application's public HTTP handler (the
	// admin listener's routes and /metrics are not served).
	URL string
	// Registry holds the application's metrics.
	Registry *prometheus.Registry

	client      *http.Client
	rec         *recorder
	poisonTopic string
}

// Each runs fn as subtests on SQLite and on a fresh PostgreSQL database,
// each with the modules started.
func Each(t *testing.T, fn func(t *testing.T, h *Harness), modules ...fx.Option) {
	for _, driver := range dbtest.Drivers {
		t.Run(driver, func(t *testing.T) { fn(t, Start(t, driver, modules...)) })
	}
}

// Start runs the modules on a new database of driver (db.DriverSQLite or
// db.DriverPostgres) with the serving application's wiring (app.Options):
// migrations (the modules' and the platform's), a gochannel bus with the
// modules' handlers and the real middleware, the outbox relay, and the HTTP
// handler with the modules' routes, served by httptest. Everything stops
// when the test ends.
func Start(t testing.TB, driver string, modules ...fx.Option) *Harness {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.Database = dbtest.Config(t, driver)
	return start(t, cfg, modules...)
}

// StartOn is [Start] on d, a database the test opened (dbtest.Open), instead
// of a new one: applications started on one database are instances of the
// binary sharing it, each with its own bus and relay. d stays open when the
// application stops.
func StartOn(t testing.TB, d *db.DB, modules ...fx.Option) *Harness {
	t.Helper()
	return start(t, app.DefaultConfig(), append([]fx.Option{fx.Replace(d)}, modules...)...)
}

func start(t testing.TB, cfg app.Config, modules ...fx.Option) *Harness {
	t.Helper()
	// Warnings and errors only: failed attempts and poisoned messages.
	logger := slog.New(bus.NewLogHandler(slog.NewTextHandler(testenv.Output(t), &slog.HandlerOptions{Level: slog.LevelWarn})))

	h := &Harness{rec: newRecorder()}
	var (
		handlers app.Handlers
		busCfg   bus.Config
	)
	a := fx.New(
		app.Options(cfg, logger, modules...),
		fx.Decorate(func(o bus.Options) bus.Options {
			o.WrapPublisher = h.rec.wrap
			return o
		}),
		fx.Populate(&h.DB, &h.Bus, &h.Registry, &handlers, &busCfg),
	)
	if err := a.Err(); err != nil {
		t.Fatal(err)
	}
	h.poisonTopic = busCfg.PoisonTopic // as the modules' options may have changed it
	ctx, cancel := context.WithTimeout(context.Background(), a.StartTimeout())
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.StopTimeout())
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	// Closed before the application stops, as the binary drains HTTP first.
	srv := httptest.NewServer(handlers.Public)
	t.Cleanup(srv.Close)
	h.URL, h.client = srv.URL, srv.Client()
	return h
}

// Response is an HTTP response the harness received.
type Response struct {
	Status int
	// Body is the decoded JSON object; nil when the body is not an object.
	Body map[string]any
	// Raw is the body as received.
	Raw []byte
}

// Do sends a request to the application and reads its JSON response. body
// is sent as is when it is a string or []byte (to send malformed JSON), not
// at all when nil, and JSON-encoded otherwise. A response body that is not
// JSON fails the test: every endpoint answers JSON, errors included.
func (h *Harness) Do(t testing.TB, method, path string, body any) Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewReader([]byte(b))
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode %s %s body: %v", method, path, err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if len(raw) > 0 && !json.Valid(raw) {
		t.Fatalf("%s %s: body %q is not JSON", method, path, raw)
	}
	out := Response{Status: res.StatusCode, Raw: raw}
	_ = json.Unmarshal(raw, &out.Body) // stays nil unless an object
	return out
}

// Next waits (up to 10s) for the next event of topic published on the bus,
// by the relay or directly, that the test has not read yet, and decodes it
// as a handler of topic would. Events of one topic are read in the order
// the bus accepted them, whatever order handlers see them in.
func Next[T any](t testing.TB, h *Harness, topic bus.Topic[T]) bus.Event[T] {
	t.Helper()
	msg, ok := h.rec.next(topic.Name(), wait)
	if !ok {
		t.Fatalf("no %s event published within %s", topic.Name(), wait)
		return bus.Event[T]{}
	}
	e, err := bus.Decode(topic, msg)
	if err != nil {
		t.Fatalf("%s: %v", topic.Name(), err)
	}
	return e
}

// None fails if an event of topic the test has not read is published
// within 500ms.
func None[T any](t testing.TB, h *Harness, topic bus.Topic[T]) {
	t.Helper()
	if msg, ok := h.rec.next(topic.Name(), quiet); ok {
		e, err := bus.Decode(topic, msg)
		if err != nil {
			t.Fatalf("unexpected %s message: %v", topic.Name(), err)
		}
		t.Fatalf("unexpected %s event: %+v", topic.Name(), e.Payload)
	}
}

// NextPoisoned waits (up to 10s) for the next message published on the
// poison topic that the test has not read yet.
func (h *Harness) NextPoisoned(t testing.TB) bus.PoisonedMessage {
	t.Helper()
	msg, ok := h.rec.next(h.poisonTopic, wait)
	if !ok {
		t.Fatalf("nothing poisoned within %s", wait)
		return bus.PoisonedMessage{}
	}
	return bus.DecodePoisoned(msg)
}

// NonePoisoned fails if a message the test has not read is poisoned within
// 500ms.
func (h *Harness) NonePoisoned(t testing.TB) {
	t.Helper()
	if msg, ok := h.rec.next(h.poisonTopic, quiet); ok {
		p := bus.DecodePoisoned(msg)
		t.Fatalf("unexpected poisoned message: %s gave up on %s: %s", p.Handler, p.Topic, p.Reason)
	}
}

// Handled is how many attempts handler has finished, successful or not,
// from the bus's app_bus_handler_execution_time_seconds histogram.
func (h *Harness) Handled(t testing.TB, handler string) int {
	t.Helper()
	families, err := h.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() != "app_bus_handler_execution_time_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "handler_name" && l.GetValue() == handler {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return int(n)
}

// Eventually polls cond until it holds, failing the test after 10s.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(wait); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
