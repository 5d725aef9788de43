package e2e_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/monolith/internal/apptest"
	"github.com/example/monolith/platform/stats"
	"github.com/example/monolith/platform/topics"
)

const createProfile = "customer.create-profile"

func decodeReport(t *testing.T, raw string) stats.Report {
	t.Helper()
	var r stats.Report
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatalf("not a report: %v\n%s", err, raw)
	}
	return r
}

func handlerStats(t *testing.T, r stats.Report, name string) stats.Handler {
	t.Helper()
	for _, h := range r.Handlers {
		if h.Handler == name {
			return h
		}
	}
	t.Fatalf("no handler %s in the report", name)
	return stats.Handler{}
}

// TestStatsOnGoChannel checks GET /api/ops/stats and the metrics on the
// admin /metrics against the in-process bus: rates and depths come from
// the running instance.
func TestStatsOnGoChannel(t *testing.T) {
	token := "e2e-" + apptest.RandomID() + apptest.RandomID()
	env := []string{"APP_DATABASE_DSN=" + filepath.Join(t.TempDir(), "app.db"), "APP_ADMIN_TOKEN=" + token}
	in := apptest.Start(t, "configs/app.yaml", env...)
	admin := in.Admin()
	in.Expect(t, http.StatusNotFound, "GET", "/api/ops/stats", nil)
	admin.WithToken("").Expect(t, http.StatusUnauthorized, "GET", "/api/ops/stats", nil)

	user := in.Expect(t, http.StatusCreated, "POST", "/api/identity/users",
		map[string]string{"email": "stats-" + apptest.RandomID() + "@example.com", "name": "Stats", "password": "correct horse battery"})
	apptest.Eventually(t, "the customer of the registered user", func() bool {
		list, _ := in.Expect(t, http.StatusOK, "GET", "/api/customers?user_id="+user.Str("id"), nil).Body["customers"].([]any)
		return len(list) == 1
	})

	var r stats.Report
	apptest.Eventually(t, "create-profile's run in the rates", func() bool {
		r = decodeReport(t, admin.Expect(t, http.StatusOK, "GET", "/api/ops/stats", nil).Raw)
		h := handlerStats(t, r, createProfile)
		return r.Rates != nil && h.RunsPerSecond != nil && *h.RunsPerSecond > 0
	})
	h := handlerStats(t, r, createProfile)
	if r.Adapter != "gochannel" || len(r.Errors) != 0 || r.Rates.Scope != "instance" || !strings.Contains(r.Rates.Note, "every instance") {
		t.Fatalf("report %+v", r)
	}
	if h.Topic != topics.UserRegistered.Name() || h.Concurrency != 1 || h.DepthScope != "instance" || *h.Waiting != 0 || *h.Pending != 0 ||
		*h.ErrorRatio != 0 || h.P95Seconds == nil || *h.Poisoned != 0 {
		t.Fatalf("create-profile %+v", h)
	}
	registered := false
	for _, tp := range r.Topics {
		if tp.Topic == topics.UserRegistered.Name() {
			registered = tp.PublishedPerSecond != nil && *tp.PublishedPerSecond > 0 && *tp.Waiting == 0 && len(tp.Handlers) > 0
		}
	}
	if !registered || r.Outbox == nil || r.Poison == nil || r.Poison.Total != 0 {
		t.Fatalf("topics %+v, outbox %+v, poison %+v", r.Topics, r.Outbox, r.Poison)
	}

	metrics := admin.Expect(t, http.StatusOK, "GET", "/metrics", nil).Raw
	for _, series := range []string{
		`app_bus_handler_waiting_messages{handler="customer.create-profile",topic="identity.user.registered"} 0`,
		`app_bus_handler_pending_messages{handler="customer.create-profile",topic="identity.user.registered"} 0`,
		`app_bus_handler_oldest_unhandled_seconds{handler="customer.create-profile",topic="identity.user.registered"} 0`,
		`app_poison_messages{handler="customer.create-profile",topic="identity.user.registered"} 0`,
		`app_bus_published_messages_total{topic="identity.user.registered"} 1`,
		"app_outbox_backlog_events ",
		"app_outbox_oldest_unforwarded_seconds ",
		`app_stats_source_up{source="bus"} 1`,
		`app_stats_source_up{source="outbox"} 1`,
		`app_stats_source_up{source="poison"} 1`,
	} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}
