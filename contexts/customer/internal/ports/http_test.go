package ports_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/example/monolith/contexts/customer"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/topics"
)

func TestHTTP(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		ctx := context.Background()
		svc := service(h)
		for _, user := range []string{"u1", "u2"} {
			if err := svc.CreateProfile(ctx, user, user+"@example.com", "Name "+user); err != nil {
				t.Fatal(err)
			}
		}
		if err := svc.DeactivateUserCustomer(ctx, "u2"); err != nil {
			t.Fatal(err)
		}
		list := h.Do(t, "GET", "/api/customers", nil)
		customers, _ := list.Body["customers"].([]any)
		if list.Status != http.StatusOK || len(customers) != 2 {
			t.Fatalf("GET /api/customers = %d %v, want 200 with 2 customers", list.Status, list.Body)
		}
		u2, u1 := customers[0].(map[string]any), customers[1].(map[string]any) // newest first
		active, inactive := "/api/customers/"+u1["id"].(string), "/api/customers/"+u2["id"].(string)
		if u1["user_id"] != "u1" || u2["user_id"] != "u2" || u1["active"] != true || u2["active"] != false {
			t.Fatalf("customers = %v, want u2 (inactive) then u1 (active)", customers)
		}
		contexttest.Next(t, h, topics.CustomerCreated)
		contexttest.Next(t, h, topics.CustomerCreated)
		contexttest.Next(t, h, topics.CustomerUpdated)

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
			r := h.Do(t, tc.method, tc.path, tc.body)
			e, _ := r.Body["error"].(map[string]any)
			if r.Status != tc.status || e["code"] != tc.code {
				t.Errorf("%s %s %s = %d %v, want %d %s", tc.method, tc.path, tc.body, r.Status, r.Body, tc.status, tc.code)
			}
		}
		if got := h.Do(t, "GET", active, nil); got.Status != 200 || !sameJSON(got.Body, u1) {
			t.Fatalf("GET %s after rejected requests = %d %v, want unchanged %v", active, got.Status, got.Body, u1)
		}
		contexttest.None(t, h, topics.CustomerUpdated)
		contexttest.None(t, h, topics.DealWon)
		if n := count(t, h, `SELECT COUNT(*) FROM deals`); n != 0 {
			t.Fatalf("%d deals stored by rejected requests", n)
		}

		// Accepted requests.
		patched := h.Do(t, "PATCH", active, `{"name":" Ada Lovelace ","tier":"pro"}`)
		if patched.Status != 200 || patched.Body["name"] != "Ada Lovelace" || patched.Body["tier"] != "pro" ||
			patched.Body["id"] != u1["id"] || patched.Body["created_at"] != u1["created_at"] || patched.Body["updated_at"] == u1["updated_at"] {
			t.Fatalf("PATCH = %d %v", patched.Status, patched.Body)
		}
		if e := contexttest.Next(t, h, topics.CustomerUpdated); e.Payload.Name != "Ada Lovelace" || e.Payload.Tier != "pro" || !e.Payload.Active {
			t.Fatalf("updated = %+v", e.Payload)
		}
		if got := h.Do(t, "GET", active, nil); got.Status != 200 || !sameJSON(got.Body, patched.Body) {
			t.Fatalf("GET after PATCH = %d %v, want %v", got.Status, got.Body, patched.Body)
		}

		deal := h.Do(t, "POST", active+"/deals", `{"amount_cents":250000,"currency":"USD"}`)
		if deal.Status != 201 || deal.Body["customer_id"] != u1["id"] || deal.Body["amount_cents"] != 250000.0 ||
			deal.Body["currency"] != "USD" || deal.Body["id"] == "" || deal.Body["won_at"] == "" {
			t.Fatalf("POST deals = %d %v", deal.Status, deal.Body)
		}
		if e := contexttest.Next(t, h, topics.DealWon); e.Payload.DealID != deal.Body["id"] {
			t.Fatalf("won = %+v, want deal %v", e.Payload, deal.Body["id"])
		}
		if n := count(t, h, `SELECT COUNT(*) FROM deals`); n != 1 {
			t.Fatalf("%d deals stored, want 1", n)
		}

		for _, tc := range []struct {
			query string
			want  []any
		}{
			{"?user_id=u1", []any{u1["id"]}},
			{"?user_id=nobody", []any{}},
		} {
			r := h.Do(t, "GET", "/api/customers"+tc.query, nil)
			got, ok := r.Body["customers"].([]any)
			ids := []any{}
			for _, c := range got {
				ids = append(ids, c.(map[string]any)["id"])
			}
			if r.Status != 200 || !ok || !sameJSON(ids, tc.want) {
				t.Errorf("GET /api/customers%s = %d %v, want ids %v", tc.query, r.Status, r.Body, tc.want)
			}
		}
	}, customer.Module)
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
