package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/example/monolith/internal/apptest"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/stats"
	"github.com/example/monolith/platform/topics"
)

const createProfile = "customer.create-profile"

// appStats runs `app stats args...` with env and returns its standard
// output, failing the test if it fails.
func appStats(t *testing.T, config string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(apptest.Binary, append([]string{"--config", "../" + config, "stats"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		out = append(out, exit.Stderr...)
	}
	t.Logf("$ app stats %s\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("app stats %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

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

// TestStatsOnGoChannel checks GET /api/ops/stats, the metrics on the admin
// /metrics and `app stats` against the in-process bus: rates and depths
// come from the running instance, and the CLI on its own reads only the
// database.
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
	// The event was published once, under its topic.
	if !regexp.MustCompile(`(?m)^app_bus_publish_time_seconds_count\{[^}]*success="true",topic="identity\.user\.registered"\} 1$`).MatchString(metrics) {
		t.Errorf("/metrics lacks one successful publish of identity.user.registered")
	}

	// The CLI asks the instance...
	if out := appStats(t, "configs/app.yaml", env, "--admin", in.AdminURL); !strings.Contains(out, "Rates: instance ") || !strings.Contains(out, createProfile) {
		t.Fatal("app stats --admin does not show the instance's rates")
	}
	// ...or reads the database itself: gochannel's queues are the
	// instance's, out of its reach.
	alone := decodeReport(t, appStats(t, "configs/app.yaml", env, "--json"))
	if h := handlerStats(t, alone, createProfile); alone.Rates != nil || h.DepthScope != "none" || h.Waiting != nil || *h.Poisoned != 0 || alone.Outbox == nil {
		t.Fatalf("app stats --json without --admin: %+v", alone)
	}
}

// TestStatsOnBrokers stops the app, fills create-profile's queue behind
// its back, and checks that `app stats` (reading the broker) and, once an
// instance runs again and drains it, GET /api/ops/stats report it; the
// poison counts include messages poisoned meanwhile.
func TestStatsOnBrokers(t *testing.T) {
	for _, b := range []struct {
		name string
		new  func(*testing.T) *apptest.Broker
	}{{"amqp", apptest.AMQP}, {"redisstream", apptest.Redis}} {
		t.Run(b.name, func(t *testing.T) { statsOnBroker(t, b.new(t)) })
	}
}

func statsOnBroker(t *testing.T, b *apptest.Broker) {
	const k = 4
	env := append([]string{"APP_DATABASE_DSN=" + dbtest.Config(t, db.DriverPostgres).DSN}, b.Env...)
	first := apptest.Start(t, b.Config, env...) // creates the queues and groups
	first.Stop(t)

	for i := range k {
		userID := fmt.Sprintf("waiting-%d-%s", i, apptest.RandomID())
		msg, err := bus.NewMessage(context.Background(), topics.UserRegistered, userID, topics.UserRegisteredV1{UserID: userID, Email: userID + "@example.com", Name: "Waiting"})
		if err != nil {
			t.Fatal(err)
		}
		b.Inject(t, topics.UserRegistered.Name(), msg, false)
	}
	r := decodeReport(t, appStats(t, b.Config, env, "--json"))
	h := handlerStats(t, r, createProfile)
	if len(r.Errors) != 0 || r.Rates != nil || h.DepthScope != "shared" || h.Waiting == nil || *h.Waiting != k {
		t.Fatalf("app stats with %d events waiting for the stopped handler: errors %v, %+v", k, r.Errors, h)
	}
	if b.Adapter == "redisstream" && (*h.Pending != 0 || h.OldestUnhandledSeconds == nil) {
		t.Fatalf("redis: %+v", h)
	}
	if out := appStats(t, b.Config, env); !strings.Contains(out, createProfile) || !strings.Contains(out, "Rates: none") {
		t.Fatal("app stats does not print the table")
	}

	in := apptest.Start(t, b.Config, env...)
	garbage := message.NewMessage(watermill.NewUUID(), []byte("garbage"))
	b.Inject(t, topics.UserRegistered.Name(), garbage, true)
	admin := in.Admin()
	apptest.Eventually(t, "the backlog handled and the garbage poisoned", func() bool {
		r = decodeReport(t, admin.Expect(t, http.StatusOK, "GET", "/api/ops/stats", nil).Raw)
		h = handlerStats(t, r, createProfile)
		return *h.Waiting == 0 && (h.Pending == nil || *h.Pending == 0) && *h.Poisoned == 1
	})
	if r.Poison.Total != 1 || r.Poison.ByHandler[0] != (stats.PoisonCount{Topic: topics.UserRegistered.Name(), Handler: createProfile, Messages: 1}) {
		t.Fatalf("poison %+v", r.Poison)
	}
	if out := appStats(t, b.Config, env); !strings.Contains(out, "Poison store: 1 message(s)") {
		t.Fatal("app stats does not count the poisoned message")
	}
	metrics := admin.Expect(t, http.StatusOK, "GET", "/metrics", nil).Raw
	if !strings.Contains(metrics, `app_poison_messages{handler="customer.create-profile",topic="identity.user.registered"} 1`) ||
		!strings.Contains(metrics, `app_bus_handler_waiting_messages{handler="customer.create-profile",topic="identity.user.registered"} 0`) {
		t.Fatal("/metrics lacks the depth or the poison count of create-profile")
	}
}
