package ports_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/monolith/contexts/customer/internal/ports"
	"github.com/example/monolith/platform/httpx"
)

type response struct {
	status int
	body   map[string]any
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, raw, err)
	}
	return r
}

func TestHTTP(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		handler, err := httpx.NewHandler(ports.Routes(h.svc), nil, prometheus.NewRegistry(), slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(handler)
		defer srv.Close()

		for _, user := range []string{"u1", "u2"} {
			if err := h.svc.CreateProfile(ctx, user, user+"@example.com", "Name "+user); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.svc.DeactivateUserCustomer(ctx, "u2"); err != nil {
			t.Fatal(err)
		}
		list := do(t, srv, "GET", "/api/customers", "")
		customers, _ := list.body["customers"].([]any)
		if list.status != http.StatusOK || len(customers) != 2 {
			t.Fatalf("GET /api/customers = %d %v, want 200 with 2 customers", list.status, list.body)
		}
		u2, u1 := customers[0].(map[string]any), customers[1].(map[string]any) // newest first
		active, inactive := "/api/customers/"+u1["id"].(string), "/api/customers/"+u2["id"].(string)
		if u1["user_id"] != "u1" || u2["user_id"] != "u2" || u1["active"] != true || u2["active"] != false {
			t.Fatalf("customers = %v, want u2 (inactive) then u1 (active)", customers)
		}
		next(t, h.created)
		next(t, h.created)
		next(t, h.updated)

		// Rejected requests: the status, the error code, and nothing written.
		for _, tc := range []struct {
			method, path, body string
			status             int
			code               string
		}{
			{"GET", "/api/customers/unknown", "", 404, "not_found"},
			{"PATCH", active, `{"name":`, 400, "bad_request"},
			{"PATCH", active, `{"nick":"Ada"}`, 400, "bad_request"},
			{"PATCH", active, ``, 400, "bad_request"},
			{"PATCH", active, `{}`, 422, "validation_failed"},
			{"PATCH", active, `{"name":"  "}`, 422, "validation_failed"},
			{"PATCH", active, `{"name":"` + strings.Repeat("x", 201) + `"}`, 422, "validation_failed"},
			{"PATCH", active, `{"name":"Ada","tier":"gold"}`, 422, "validation_failed"},
			{"PATCH", "/api/customers/unknown", `{"tier":"gold"}`, 422, "validation_failed"},
			{"PATCH", "/api/customers/unknown", `{"tier":"pro"}`, 404, "not_found"},
			{"POST", active + "/deals", `{"amount_cents":100,"currency":"EUR"`, 400, "bad_request"},
			{"POST", active + "/deals", `{"amount_cents":1.5,"currency":"EUR"}`, 400, "bad_request"},
			{"POST", active + "/deals", `{"amount_cents":100,"currency":"EUR","note":"x"}`, 400, "bad_request"},
			{"POST", active + "/deals", `{"amount_cents":0,"currency":"EUR"}`, 422, "validation_failed"},
			{"POST", active + "/deals", `{"amount_cents":100,"currency":"eur"}`, 422, "validation_failed"},
			{"POST", active + "/deals", `{"amount_cents":100}`, 422, "validation_failed"},
			{"POST", "/api/customers/unknown/deals", `{"amount_cents":100,"currency":"EUR"}`, 404, "not_found"},
			{"POST", inactive + "/deals", `{"amount_cents":100,"currency":"EUR"}`, 409, "conflict"},
		} {
			r := do(t, srv, tc.method, tc.path, tc.body)
			e, _ := r.body["error"].(map[string]any)
			if r.status != tc.status || e["code"] != tc.code {
				t.Errorf("%s %s %s = %d %v, want %d %s", tc.method, tc.path, tc.body, r.status, r.body, tc.status, tc.code)
			}
		}
		if got := do(t, srv, "GET", active, ""); got.status != 200 || !sameJSON(got.body, u1) {
			t.Fatalf("GET %s after rejected requests = %d %v, want unchanged %v", active, got.status, got.body, u1)
		}
		none(t, h.updated)
		none(t, h.won)
		if n := countDeals(t, h); n != 0 {
			t.Fatalf("%d deals stored by rejected requests", n)
		}

		// Accepted requests.
		patched := do(t, srv, "PATCH", active, `{"name":" Ada Lovelace ","tier":"pro"}`)
		if patched.status != 200 || patched.body["name"] != "Ada Lovelace" || patched.body["tier"] != "pro" ||
			patched.body["id"] != u1["id"] || patched.body["created_at"] != u1["created_at"] || patched.body["updated_at"] == u1["updated_at"] {
			t.Fatalf("PATCH = %d %v", patched.status, patched.body)
		}
		if e := next(t, h.updated); e.Payload.Name != "Ada Lovelace" || e.Payload.Tier != "pro" || !e.Payload.Active {
			t.Fatalf("updated = %+v", e.Payload)
		}
		if got := do(t, srv, "GET", active, ""); got.status != 200 || !sameJSON(got.body, patched.body) {
			t.Fatalf("GET after PATCH = %d %v, want %v", got.status, got.body, patched.body)
		}

		deal := do(t, srv, "POST", active+"/deals", `{"amount_cents":250000,"currency":"USD"}`)
		if deal.status != 201 || deal.body["customer_id"] != u1["id"] || deal.body["amount_cents"] != 250000.0 ||
			deal.body["currency"] != "USD" || deal.body["id"] == "" || deal.body["won_at"] == "" {
			t.Fatalf("POST deals = %d %v", deal.status, deal.body)
		}
		if e := next(t, h.won); e.Payload.DealID != deal.body["id"] {
			t.Fatalf("won = %+v, want deal %v", e.Payload, deal.body["id"])
		}
		if n := countDeals(t, h); n != 1 {
			t.Fatalf("%d deals stored, want 1", n)
		}

		for _, tc := range []struct {
			query string
			want  []any
		}{
			{"?user_id=u1", []any{u1["id"]}},
			{"?user_id=nobody", []any{}},
		} {
			r := do(t, srv, "GET", "/api/customers"+tc.query, "")
			got, ok := r.body["customers"].([]any)
			ids := []any{}
			for _, c := range got {
				ids = append(ids, c.(map[string]any)["id"])
			}
			if r.status != 200 || !ok || !sameJSON(ids, tc.want) {
				t.Errorf("GET /api/customers%s = %d %v, want ids %v", tc.query, r.status, r.body, tc.want)
			}
		}
	})
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func countDeals(t *testing.T, h *harness) int {
	t.Helper()
	var n int
	if err := h.d.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM deals`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
