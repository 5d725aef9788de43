package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/catalog"
	"github.com/example/monolith/platform/httpx"
)

const token = "console-test-token-0123456789"

type greeting struct {
	Text string `json:"text"`
}

var greeted = bus.NewTopic[greeting]("test.greeting.sent", 1)

// server serves the console's routes as the admin listener does, with
// the given admin token, and a registry holding the bus's metrics.
func server(t *testing.T, adminToken string) (*httptest.Server, *Tail, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := bus.DefaultConfig()
	b, err := bus.New(context.Background(), cfg, bus.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	tail := NewTail()
	routes := Routes(Params{
		Tail: tail, Admin: httpx.AdminConfig{Addr: "127.0.0.1:0", Token: adminToken, TraceURL: "http://localhost:16686/trace/{trace_id}"},
		Bus: cfg, Registry: reg,
		Handlers: []bus.Handler{bus.NewHandler("test.greet", greeted, func(context.Context, bus.Event[greeting]) error { return nil })},
	})
	h, err := httpx.NewAdminHandler(routes, reg, adminToken, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, tail, reg
}

// reply is an HTTP response, read.
type reply struct {
	StatusCode int
	Header     http.Header
}

func request(t *testing.T, method, url string, header ...string) (reply, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header}, string(body)
}

func TestPageAndFilesNeedNoTokenButTheAPIDoes(t *testing.T) {
	srv, _, _ := server(t, token)
	bearer := []string{"Authorization", "Bearer " + token}
	for _, tt := range []struct {
		method, path string
		header       []string
		status       int
		contain      string
	}{
		{"GET", "/console", nil, 200, `<script src="/console/assets/console.js"`},
		{"GET", "/console/", nil, 200, "<title>Console</title>"},
		{"GET", "/console/assets/console.js", nil, 200, "EventSource"},
		{"GET", "/console/assets/console.css", nil, 200, ":root"},
		{"GET", "/console/assets/index.html", nil, 404, `"code":"not_found"`},
		{"GET", "/console/assets/nothing.js", nil, 404, `"code":"not_found"`},
		{"GET", "/console/assets/console.js?v=1", nil, 400, `"code":"bad_request"`},
		{"GET", "/console?x=1", nil, 400, `"code":"bad_request"`},
		{"GET", "/console/api/config", nil, 401, `"code":"unauthorized"`},
		{"GET", "/console/api/flow", nil, 401, `"code":"unauthorized"`},
		{"POST", "/console/api/ticket", nil, 401, `"code":"unauthorized"`},
		{"GET", "/console/api/live", nil, 401, `"code":"unauthorized"`},
		{"GET", "/console/api/live?ticket=1.abc", nil, 401, `"code":"unauthorized"`},
		{"GET", "/console/api/config", bearer, 200, `"trace_url":"http://localhost:16686/trace/{trace_id}"`},
		{"GET", "/console/api/config?x=1", bearer, 400, `"code":"bad_request"`},
		{"GET", "/console/api/flow", bearer, 200, `"name":"test.greet"`},
		{"POST", "/console/api/ticket", bearer, 200, `"ticket":"`},
		{"GET", "/console/api/flow?x=1", bearer, 400, `"code":"bad_request"`},
		{"POST", "/console/api/ticket?x=1", bearer, 400, `"code":"bad_request"`},
		{"GET", "/console/api/live?topic=a&nope=1", bearer, 400, `unknown query parameter \"nope\"`},
		{"GET", "/console/api/live?topic=a&topic=b", bearer, 400, `given 2 times`},
		{"GET", "/console/api/live?topic=" + strings.Repeat("x", 201), bearer, 400, "longer than 200"},
		{"DELETE", "/console/api/flow", bearer, 405, `"code":"method_not_allowed"`},
		{"GET", "/console/api/nothing", bearer, 404, `"code":"not_found"`},
	} {
		resp, body := request(t, tt.method, srv.URL+tt.path, tt.header...)
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.contain) {
			t.Errorf("%s %s = %d %.200s, want %d with %s", tt.method, tt.path, resp.StatusCode, body, tt.status, tt.contain)
		}
		if tt.status >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: error as %s, want JSON", tt.method, tt.path, resp.Header.Get("Content-Type"))
		}
	}
	resp, _ := request(t, http.MethodGet, srv.URL+"/console")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("page headers %v", resp.Header)
	}
}

func TestTickets(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tk := newTickets(token)
	tk.now = func() time.Time { return now }
	ticket, exp := tk.issue()
	if !tk.valid(ticket) || !exp.Equal(now.Add(ticketTTL)) {
		t.Fatalf("fresh ticket %q (expires %s) refused", ticket, exp)
	}
	other := newTickets(token + "x")
	other.now = tk.now
	payload, sig, _ := strings.Cut(ticket, ".")
	for name, bad := range map[string]string{
		"empty": "", "no signature": payload, "other signature": payload + "." + other.sign(payload),
		"later expiry": "1900000000." + sig, "garbage": "a.b.c",
	} {
		if tk.valid(bad) {
			t.Errorf("%s: ticket %q accepted", name, bad)
		}
	}
	if other.valid(ticket) {
		t.Error("a ticket of another token accepted")
	}
	now = now.Add(ticketTTL)
	if tk.valid(ticket) {
		t.Error("an expired ticket accepted")
	}
}

// stream opens the live stream and returns its events as they come.
func stream(t *testing.T, url string) <-chan [2]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req) //nolint:bodyclose // the goroutine reading the stream closes it
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, body)
	}
	events := make(chan [2]string, 100)
	go func() {
		defer func() { _ = resp.Body.Close() }()
		var name string
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				events <- [2]string{name, v}
			}
		}
		close(events)
	}()
	return events
}

func next(t *testing.T, events <-chan [2]string) (string, map[string]any) {
	t.Helper()
	select {
	case e, ok := <-events:
		if !ok {
			t.Fatal("stream ended")
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(e[1]), &v); err != nil {
			t.Fatalf("event %s data %s: %v", e[0], e[1], err)
		}
		return e[0], v
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return "", nil
	}
}

func waitSubscribers(t *testing.T, tail *Tail, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); tail.open.Load() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams open, want %d", tail.open.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func handled(t *testing.T, handler, correlation string, result bus.Result, payload []byte) bus.Handled {
	t.Helper()
	msg, err := bus.NewMessage(bus.WithCorrelationID(context.Background(), correlation), greeted, "g-1", greeting{Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	msg.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if payload != nil {
		msg.Payload = payload
	}
	h := bus.Handled{Handler: handler, Topic: greeted.Name(), MessageID: msg.UUID, Metadata: msg.Metadata, Payload: msg.Payload,
		Result: result, Attempts: 1, Duration: 1500 * time.Microsecond, TraceParent: msg.Metadata.Get("traceparent")}
	if result == bus.ResultPoisoned {
		h.Err, h.Attempts = errors.New("it broke"), 3
	}
	return h
}

func TestLiveStreamsWhatItsFilterSelects(t *testing.T) {
	srv, tail, _ := server(t, token)
	_, body := request(t, http.MethodPost, srv.URL+"/console/api/ticket", "Authorization", "Bearer "+token)
	var ticket struct{ Ticket string }
	if err := json.Unmarshal([]byte(body), &ticket); err != nil || ticket.Ticket == "" {
		t.Fatalf("ticket %s: %v", body, err)
	}
	all := stream(t, srv.URL+"/console/api/live?ticket="+ticket.Ticket)
	byCorrelation := stream(t, srv.URL+"/console/api/live?ticket="+ticket.Ticket+"&correlation_id=corr-2&context=test")
	waitSubscribers(t, tail, 2)

	tail.ObserveHandled(handled(t, "test.greet", "corr-1", bus.ResultOK, nil))
	tail.ObserveHandled(handled(t, "test.greet", "corr-2", bus.ResultPoisoned, []byte("not json \xff")))
	pub := handled(t, "", "corr-2", "", nil)
	tail.ObservePublished(bus.Published{Topic: pub.Topic, MessageID: pub.MessageID, Metadata: pub.Metadata, Payload: pub.Payload})

	name, r := next(t, all)
	env, _ := r["envelope"].(map[string]any)
	if name != "row" || r["handler"] != "test.greet" || r["context"] != "test" || r["result"] != "ok" || r["attempts"] != 1.0 ||
		r["duration_ms"] != 1.5 || r["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || env["correlation_id"] != "corr-1" ||
		env["aggregate_id"] != "g-1" || r["payload"].(map[string]any)["text"] != "hi" {
		t.Errorf("first row %s %v", name, r)
	}
	if _, r := next(t, all); r["result"] != "poisoned" || r["error"] != "it broke" || r["payload_text"] != "not json \uFFFD" {
		t.Errorf("poisoned row %v", r)
	}
	if _, r := next(t, all); r["result"] != "published" || r["handler"] != "" || r["context"] != "test" {
		t.Errorf("published row %v", r)
	}
	// The filtered stream skips corr-1.
	if _, r := next(t, byCorrelation); r["result"] != "poisoned" {
		t.Errorf("first row of the filtered stream %v", r)
	}
	if _, r := next(t, byCorrelation); r["result"] != "published" {
		t.Errorf("second row of the filtered stream %v", r)
	}
	// The bearer token opens it too (curl).
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/console/api/live", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("live with the bearer token: %v %v", resp, err)
	}
	_ = resp.Body.Close()
}

func TestSlowStreamsLoseRowsAndHandlersNeverWait(t *testing.T) {
	tail := NewTail()
	sub, ok := tail.subscribe(Filter{})
	if !ok {
		t.Fatal("subscribe refused")
	}
	h := handled(t, "test.greet", "c", bus.ResultOK, nil)
	done := make(chan struct{})
	go func() {
		for range subscriberBuffer + 10 {
			tail.ObserveHandled(h)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ObserveHandled blocked on a stream nobody reads")
	}
	if len(sub.rows) != subscriberBuffer || sub.dropped.Load() != 10 {
		t.Fatalf("%d rows buffered, %d dropped; want %d and 10", len(sub.rows), sub.dropped.Load(), subscriberBuffer)
	}
	tail.unsubscribe(sub)
	for range maxSubscribers {
		if _, ok := tail.subscribe(Filter{}); !ok {
			t.Fatal("subscribe refused below the limit")
		}
	}
	if _, ok := tail.subscribe(Filter{}); ok {
		t.Fatalf("more than %d streams open", maxSubscribers)
	}
}

func TestNothingIsEncodedWithoutAStream(t *testing.T) {
	tail := NewTail()
	h := handled(t, "test.greet", "c", bus.ResultOK, nil)
	if n := testing.AllocsPerRun(100, func() { tail.ObserveHandled(h) }); n != 0 {
		t.Fatalf("ObserveHandled with no stream allocates %.0f times", n)
	}
}

func TestStreamsEndWhenTheServerShutsDown(t *testing.T) {
	tail := NewTail()
	c := &console{tail: tail, tickets: newTickets("")}
	stopping := make(chan struct{})
	srv := httptest.NewUnstartedServer(httpx.HandlerFunc(c.live))
	srv.Config.BaseContext = func(net.Listener) context.Context { return httpx.WithShutdown(context.Background(), stopping) }
	srv.Start()
	defer srv.Close()
	events := stream(t, srv.URL)
	waitSubscribers(t, tail, 1)
	close(stopping)
	select {
	case _, open := <-events:
		if open {
			t.Fatal("an event after shutdown started")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end when shutdown started")
	}
	waitSubscribers(t, tail, 0)
}

func TestTraceID(t *testing.T) {
	for in, want := range map[string]string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": "4bf92f3577b34da6a3ce929d0e0e4736",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01": "",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01": "",
		"garbage": "", "": "",
	} {
		if got := traceID(in); got != want {
			t.Errorf("traceID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFlowCounts(t *testing.T) {
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: handlerSecondsMetric, Help: "h"}, []string{"handler_name", "success", "topic"})
	poisoned := prometheus.NewCounterVec(prometheus.CounterOpts{Name: poisonedMetric, Help: "p"}, []string{"topic", "handler"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(seconds, poisoned)
	seconds.WithLabelValues("test.greet", "true", greeted.Name()).Observe(0.1)
	seconds.WithLabelValues("test.greet", "true", greeted.Name()).Observe(0.1)
	seconds.WithLabelValues("test.greet", "false", greeted.Name()).Observe(0.1)
	poisoned.WithLabelValues(greeted.Name(), "test.greet").Inc()
	cur, err := countsNow(reg)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New([]bus.TopicInfo{greeted.Info()},
		[]bus.Handler{bus.NewHandler("test.greet", greeted, func(context.Context, bus.Event[greeting]) error { return nil })}, nil, bus.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := newFlow(cat, time.Unix(100, 0), cur)
	if len(f.Handlers) != 1 {
		t.Fatalf("flow handlers %+v", f.Handlers)
	}
	if h := f.Handlers[0]; h.Name != "test.greet" || h.Succeeded != 2 || h.Failed != 1 || h.Poisoned != 1 {
		t.Fatalf("handler %+v", h)
	}
	if len(f.Topics) != 1 || f.Topics[0].Name != greeted.Name() || len(f.Topics[0].Consumers) != 1 {
		t.Fatalf("topics %+v", f.Topics)
	}
}
