package ports_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"reflect"
	"testing"

	"github.com/example/monolith/contexts/settings"
	"github.com/example/monolith/contexts/settings/internal/app"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/setting"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// isError reports whether body is an {"error": {"code", "message"}}
// response with code.
func isError(body map[string]any, code string) bool {
	e, _ := body["error"].(map[string]any)
	message, _ := e["message"].(string)
	return e["code"] == code && message != ""
}

func TestHTTP(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		if r := h.Do(t, "GET", "/api/settings/shop", nil); r.Status != http.StatusNotFound || !isError(r.Body, "not_found") {
			t.Fatalf("GET before StoreSchema: %d %s, want 404 not_found", r.Status, r.Raw)
		}
		s := app.NewService(h.DB, h.Bus, slog.New(slog.DiscardHandler))
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
			if r := h.Do(t, "PUT", "/api/settings/shop/tier", tc.body); r.Status != tc.status || !isError(r.Body, tc.code) {
				t.Errorf("%s: %d %s, want %d %s", tc.name, r.Status, r.Raw, tc.status, tc.code)
			}
		}
		if r := h.Do(t, "PUT", "/api/settings/shop/tier", `{"value": "gold"}`); !reflect.DeepEqual(r.Body, decode(t,
			`{"error": {"code": "validation_failed", "message": "tier must be one of basic, pro"}}`)) {
			t.Errorf("422 body %s, want the reason", r.Raw)
		}
		for _, path := range []string{"/api/settings/shop/missing", "/api/settings/nowhere/open"} {
			if r := h.Do(t, "PUT", path, `{"value": true}`); r.Status != http.StatusNotFound || !isError(r.Body, "not_found") {
				t.Errorf("PUT %s: %d %s, want 404 not_found", path, r.Status, r.Raw)
			}
		}

		r := h.Do(t, "PUT", "/api/settings/shop/tier", `{"value": "pro"}`)
		if want := decode(t, `{"context": "shop", "key": "tier", "value": "pro"}`); r.Status != http.StatusOK || !reflect.DeepEqual(r.Body, want) {
			t.Fatalf("PUT tier pro: %d %s, want 200 %v", r.Status, r.Raw, want)
		}
		r = h.Do(t, "GET", "/api/settings/shop", nil)
		want := decode(t, `{"context": "shop", "settings": [
			{"key": "limit", "type": "int", "value": 10, "default": 10, "min": 1, "max": 100, "description": "items per order"},
			{"key": "open", "type": "bool", "value": true, "default": true, "description": "whether the shop takes orders"},
			{"key": "tier", "type": "string", "value": "pro", "default": "basic", "allowed": ["basic", "pro"], "description": "tier of new customers"}
		]}`)
		if r.Status != http.StatusOK || !reflect.DeepEqual(r.Body, want) {
			t.Fatalf("GET: %d %s, want 200 %v", r.Status, r.Raw, want)
		}
	}, settings.Module)
}
