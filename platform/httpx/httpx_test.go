package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/httpx"
)

func newHandler(t *testing.T, checks ...httpx.Check) http.Handler {
	t.Helper()
	type body struct {
		Name string `json:"name"`
	}
	routes := []httpx.Route{
		{Pattern: "POST /things", Handler: httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			var b body
			if err := httpx.Decode(w, r, &b); err != nil {
				return err
			}
			httpx.WriteJSON(w, http.StatusCreated, map[string]string{"name": b.Name, "correlation_id": bus.CorrelationID(r.Context())})
			return nil
		})},
		{Pattern: "GET /boom", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })},
		{Pattern: "GET /fail", Handler: httpx.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
			return errors.New("database password is hunter2") // must not reach the client
		})},
	}
	h, err := httpx.NewHandler(routes, checks, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type reply struct {
	status int
	body   string
	header http.Header
}

func serve(h http.Handler, method, path, body string, header ...string) reply {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return reply{rec.Code, rec.Body.String(), rec.Header()}
}

func errorCode(t *testing.T, r reply) string {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &b); err != nil || b.Error.Code == "" {
		t.Fatalf("not a JSON error body: %q", r.body)
	}
	return b.Error.Code
}

func TestErrorsAreJSON(t *testing.T) {
	h := newHandler(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"empty body", "POST", "/things", "", 400, "bad_request"},
		{"malformed", "POST", "/things", `{"name":`, 400, "bad_request"},
		{"unknown field", "POST", "/things", `{"name":"a","admin":true}`, 400, "bad_request"},
		{"trailing data", "POST", "/things", `{"name":"a"} {}`, 400, "bad_request"},
		{"too large", "POST", "/things", `{"name":"` + strings.Repeat("x", httpx.MaxBodyBytes) + `"}`, 413, "body_too_large"},
		{"unknown route", "GET", "/nothing", "", 404, "not_found"},
		{"wrong method", "DELETE", "/things", "", 405, "method_not_allowed"},
		{"panic", "GET", "/boom", "", 500, "internal"},
		{"unexpected error", "GET", "/fail", "", 500, "internal"},
	}
	for _, tt := range tests {
		r := serve(h, tt.method, tt.path, tt.body)
		if r.status != tt.status || errorCode(t, r) != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
		if strings.Contains(r.body, "hunter2") {
			t.Errorf("%s: internal error leaked to the client: %s", tt.name, r.body)
		}
	}
}

func TestCorrelationID(t *testing.T) {
	h := newHandler(t)
	r := serve(h, "POST", "/things", `{"name":"a"}`, "X-Correlation-ID", "req-7")
	if r.status != 201 || r.header.Get("X-Correlation-ID") != "req-7" || !strings.Contains(r.body, `"correlation_id":"req-7"`) {
		t.Fatalf("given id: %d %v %s", r.status, r.header, r.body)
	}
	r = serve(h, "POST", "/things", `{"name":"a"}`)
	if id := r.header.Get("X-Correlation-ID"); len(id) != 36 || !strings.Contains(r.body, id) {
		t.Fatalf("generated id %q not handed to the request: %s", id, r.body)
	}
}

func TestReadinessNamesWhatFails(t *testing.T) {
	ok := httpx.Check{Name: "database", Check: func(context.Context) error { return nil }}
	down := httpx.Check{Name: "bus", Check: func(context.Context) error { return errors.New("amqp: not connected to the broker") }}
	if r := serve(newHandler(t, ok), "GET", "/readyz", ""); r.status != 200 {
		t.Fatalf("ready: %d %s", r.status, r.body)
	}
	r := serve(newHandler(t, ok, down), "GET", "/readyz", "")
	if r.status != 503 || !strings.Contains(r.body, `"bus":"amqp: not connected to the broker"`) || strings.Contains(r.body, "database") {
		t.Fatalf("not ready: %d %s", r.status, r.body)
	}
	if r := serve(newHandler(t, down), "GET", "/healthz", ""); r.status != 200 {
		t.Fatalf("healthz follows readiness: %d", r.status)
	}
}

func TestDuplicateRouteIsAnError(t *testing.T) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	_, err := httpx.NewHandler([]httpx.Route{{Pattern: "GET /a", Handler: noop}, {Pattern: "GET /a", Handler: noop}}, nil, slog.Default())
	if err == nil || !strings.Contains(err.Error(), `"GET /a"`) {
		t.Fatalf("duplicate route: %v", err)
	}
}

func TestShuttingDownTravelsWithTheContext(t *testing.T) {
	if ch := httpx.ShuttingDown(context.Background()); ch != nil {
		t.Fatalf("ShuttingDown of a bare context = %v, want nil", ch)
	}
	stopping := make(chan struct{})
	ctx := httpx.WithShutdown(context.Background(), stopping)
	close(stopping)
	select {
	case <-httpx.ShuttingDown(ctx):
	default:
		t.Fatal("ShuttingDown is not the channel given to WithShutdown")
	}
}
