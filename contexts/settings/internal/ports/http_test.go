package ports_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/monolith/contexts/settings/internal/app"
	"github.com/example/monolith/contexts/settings/internal/ports"
	"github.com/example/monolith/contexts/settings/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/outbox/outboxtest"
	"github.com/example/monolith/platform/setting"
)

func newServer(t *testing.T) (*httptest.Server, *app.Service) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	b, err := bus.New(context.Background(), bus.DefaultConfig(), bus.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := dbtest.Open(t, db.DriverSQLite, store.Migrations)
	outboxtest.Relay(t, d, b) // creates the outbox tables updates are published into
	s := app.NewService(d, b, logger)
	h, err := httpx.NewHandler(ports.Routes(s), nil, prometheus.NewRegistry(), logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, s
}

// call sends body (raw JSON, or none when empty) and returns the status and
// the decoded response.
func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s %s: response %q is not JSON: %v", method, path, raw, err)
	}
	return resp.StatusCode, v
}

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// isError reports whether v is an {"error": {"code", "message"}} response
// with code.
func isError(v any, code string) bool {
	body, _ := v.(map[string]any)
	e, _ := body["error"].(map[string]any)
	message, _ := e["message"].(string)
	return e["code"] == code && message != ""
}

func TestHTTP(t *testing.T) {
	srv, s := newServer(t)
	if code, body := call(t, srv, "GET", "/api/settings/shop", ""); code != http.StatusNotFound || !isError(body, "not_found") {
		t.Fatalf("GET before StoreSchema: %d %v, want 404 not_found", code, body)
	}
	err := s.StoreSchema(context.Background(), setting.Schema{Context: "shop", Settings: []setting.Definition{
		setting.Bool("open", true, "whether the shop takes orders"),
		setting.Enum("tier", "basic", []string{"basic", "pro"}, "tier of new customers"),
		setting.Int("limit", 10, 1, 100, "items per order"),
	}})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"malformed body", `{"value":`, http.StatusBadRequest, "bad_request"},
		{"unknown field", `{"value": "pro", "extra": 1}`, http.StatusBadRequest, "bad_request"},
		{"missing value", `{}`, http.StatusBadRequest, "bad_request"},
		{"null value", `{"value": null}`, http.StatusBadRequest, "bad_request"},
		{"invalid value", `{"value": "gold"}`, http.StatusUnprocessableEntity, "validation_failed"},
	} {
		if code, body := call(t, srv, "PUT", "/api/settings/shop/tier", tc.body); code != tc.status || !isError(body, tc.code) {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, body, tc.status, tc.code)
		}
	}
	if _, body := call(t, srv, "PUT", "/api/settings/shop/tier", `{"value": "gold"}`); !reflect.DeepEqual(body, decode(t,
		`{"error": {"code": "validation_failed", "message": "tier must be one of basic, pro"}}`)) {
		t.Errorf("422 body %v, want the reason", body)
	}
	for _, path := range []string{"/api/settings/shop/missing", "/api/settings/nowhere/open"} {
		if code, body := call(t, srv, "PUT", path, `{"value": true}`); code != http.StatusNotFound || !isError(body, "not_found") {
			t.Errorf("PUT %s: %d %v, want 404 not_found", path, code, body)
		}
	}

	code, body := call(t, srv, "PUT", "/api/settings/shop/tier", `{"value": "pro"}`)
	if want := decode(t, `{"context": "shop", "key": "tier", "value": "pro"}`); code != http.StatusOK || !reflect.DeepEqual(body, want) {
		t.Fatalf("PUT tier pro: %d %v, want 200 %v", code, body, want)
	}
	code, body = call(t, srv, "GET", "/api/settings/shop", "")
	want := decode(t, `{"context": "shop", "settings": [
		{"key": "limit", "type": "int", "value": 10, "default": 10, "min": 1, "max": 100, "description": "items per order"},
		{"key": "open", "type": "bool", "value": true, "default": true, "description": "whether the shop takes orders"},
		{"key": "tier", "type": "string", "value": "pro", "default": "basic", "allowed": ["basic", "pro"], "description": "tier of new customers"}
	]}`)
	if code != http.StatusOK || !reflect.DeepEqual(body, want) {
		t.Fatalf("GET: %d %v, want 200 %v", code, body, want)
	}
}
