package httpx_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/example/monolith/platform/httpx"
)

const token = "s3cret-admin-token-0123"

// listeners are the public and admin handlers of one route set: a
// context's route and an operator's, which reports who called it.
func listeners(t *testing.T, token string) (public, admin http.Handler) {
	t.Helper()
	routes := []httpx.Route{
		{Pattern: "GET /api/things", Handler: httpx.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			httpx.WriteJSON(w, http.StatusOK, map[string]string{"things": "yes"})
			return nil
		})},
		{Pattern: "GET /api/ops/things", Admin: true, Handler: httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			httpx.WriteJSON(w, http.StatusOK, map[string]string{"operator": httpx.Operator(r.Context())})
			return nil
		})},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "things_total", Help: "Things."}))
	logger := slog.New(slog.DiscardHandler)
	public, err := httpx.NewHandler(routes, nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	admin, err = httpx.NewAdminHandler(routes, reg, token, logger)
	if err != nil {
		t.Fatal(err)
	}
	return public, admin
}

func TestAdminRoutesAndMetricsOnlyOnTheAdminListener(t *testing.T) {
	public, admin := listeners(t, "")
	for _, tt := range []struct {
		name    string
		h       http.Handler
		path    string
		status  int
		contain string
	}{
		{"public route on public", public, "/api/things", 200, `"things":"yes"`},
		{"health on public", public, "/readyz", 200, "ready"},
		{"ops route on public", public, "/api/ops/things", 404, "not_found"},
		{"metrics on public", public, "/metrics", 404, "not_found"},
		{"ops route on admin", admin, "/api/ops/things", 200, `"operator":"local"`},
		{"metrics on admin", admin, "/metrics", 200, "things_total"},
		{"public route on admin", admin, "/api/things", 404, "not_found"},
		{"health on admin", admin, "/readyz", 404, "not_found"},
	} {
		r := serve(tt.h, "GET", tt.path, "")
		if r.status != tt.status || !strings.Contains(r.body, tt.contain) {
			t.Errorf("%s: GET %s = %d %s, want %d with %q", tt.name, tt.path, r.status, r.body, tt.status, tt.contain)
		}
	}
}

func TestAdminTokenIsRequiredWhenSet(t *testing.T) {
	_, admin := listeners(t, token)
	for _, tt := range []struct {
		name, path, authorization string
		status                    int
	}{
		{"no header", "/api/ops/things", "", 401},
		{"wrong token", "/api/ops/things", "Bearer not-the-token-at-all", 401},
		{"token as basic auth", "/api/ops/things", "Basic " + token, 401},
		{"token prefix", "/api/ops/things", "Bearer " + token[:len(token)-1], 401},
		{"metrics without token", "/metrics", "", 401},
		{"unknown path without token", "/api/ops/nothing", "", 401},
		{"right token", "/api/ops/things", "Bearer " + token, 200},
		{"scheme in any case", "/api/ops/things", "bearer " + token, 200},
		{"metrics with token", "/metrics", "Bearer " + token, 200},
		{"unknown path with token", "/api/ops/nothing", "Bearer " + token, 404},
	} {
		var header []string
		if tt.authorization != "" {
			header = []string{"Authorization", tt.authorization}
		}
		r := serve(admin, "GET", tt.path, "", header...)
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
			continue
		}
		if tt.status == 401 {
			if code := errorCode(t, r); code != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: code %q, WWW-Authenticate %q", tt.name, code, r.header.Get("WWW-Authenticate"))
			}
		}
	}
	r := serve(admin, "GET", "/api/ops/things", "", "Authorization", "Bearer "+token)
	if id := httpx.TokenID(token); !strings.Contains(r.body, `"operator":"`+id+`"`) {
		t.Fatalf("operator of a token request: %s, want the token id %s", r.body, id)
	}
}

func TestTokenIDIsShortAndStable(t *testing.T) {
	id := httpx.TokenID(token)
	if len(id) != 8 || strings.Trim(id, "0123456789abcdef") != "" || id != httpx.TokenID(token) || id == httpx.TokenID(token+"x") {
		t.Fatalf("TokenID = %q: want 8 stable hex digits that differ between tokens", id)
	}
}

func TestAdminConfigRefusesAnOpenListener(t *testing.T) {
	for _, tt := range []struct {
		addr, token string
		want        []string // in the error; none: valid
	}{
		{"127.0.0.1:9090", "", nil},
		{"localhost:9090", "", nil},
		{"[::1]:9090", "", nil},
		{"127.0.0.2:0", "", nil},
		{":9090", "", []string{`admin.addr: ":9090" is not a loopback address`, "admin.token"}},
		{"0.0.0.0:9090", "", []string{"admin.addr", "admin.token"}},
		{"10.1.2.3:9090", "", []string{"admin.addr", "admin.token"}},
		{"admin.internal:9090", "", []string{"admin.addr", "admin.token"}},
		{":9090", token, nil},
		{":9090", "short", []string{"admin.token: must be at least 16 characters, got 5"}},
		{"127.0.0.1:9090", " " + token, []string{"admin.token: has leading or trailing white space"}},
		{"9090", "", []string{"admin.addr: "}},
	} {
		err := httpx.AdminConfig{Addr: tt.addr, Token: tt.token}.Validate()
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.addr, err)
			}
			continue
		}
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s (token %q): error %v, want it to mention %q", tt.addr, tt.token, err, w)
			}
		}
		if err != nil && tt.token != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.token)) {
			t.Errorf("the error repeats the token: %v", err)
		}
	}
}

func TestAnonymousAdminRoutesNeedNoToken(t *testing.T) {
	routes := []httpx.Route{
		{Pattern: "GET /console", Admin: true, Anonymous: true, Handler: httpx.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			httpx.WriteJSON(w, http.StatusOK, map[string]string{"page": "yes"})
			return nil
		})},
		{Pattern: "GET /console/api/data", Admin: true, Handler: httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			httpx.WriteJSON(w, http.StatusOK, map[string]string{"operator": httpx.Operator(r.Context())})
			return nil
		})},
		// Anonymous means nothing on the public listener.
		{Pattern: "GET /api/things", Anonymous: true, Handler: http.NotFoundHandler()},
	}
	admin, err := httpx.NewAdminHandler(routes, nil, token, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, method, path, authorization string
		status                            int
	}{
		{"anonymous route", "GET", "/console", "", 200},
		{"anonymous route with a wrong token", "GET", "/console", "Bearer wrong-wrong-wrong-wrong", 200},
		{"anonymous path, other method", "POST", "/console", "", 401},
		{"route beside it", "GET", "/console/api/data", "", 401},
		{"route beside it with the token", "GET", "/console/api/data", "Bearer " + token, 200},
		{"public route's path", "GET", "/api/things", "", 401},
	} {
		var header []string
		if tt.authorization != "" {
			header = []string{"Authorization", tt.authorization}
		}
		if r := serve(admin, tt.method, tt.path, "", header...); r.status != tt.status {
			t.Errorf("%s: %s %s = %d %s, want %d", tt.name, tt.method, tt.path, r.status, r.body, tt.status)
		}
	}
}

func TestAdminConfigChecksTheTraceURL(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"", ""},
		{"http://localhost:16686/trace/{trace_id}", ""},
		{"https://tempo.example.com/explore?trace={trace_id}&x=1", ""},
		{"http://localhost:16686/trace/", "does not contain {trace_id}"},
		{"localhost:16686/trace/{trace_id}", "not an absolute http or https URL"},
		{"javascript:alert({trace_id})", "not an absolute http or https URL"},
		{"http://[::1/{trace_id}", "admin.trace_url: "},
	} {
		err := httpx.AdminConfig{Addr: "127.0.0.1:9090", TraceURL: tt.url}.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("trace_url %q: %v", tt.url, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "admin.trace_url")):
			t.Errorf("trace_url %q: error %v, want it to name admin.trace_url and say %q", tt.url, err, tt.want)
		}
	}
}
