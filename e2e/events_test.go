package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/example/monolith/internal/apptest"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/topics"
)

// appEvents runs `app events args...` on configs/app.yaml with env and
// returns its output and error.
func appEvents(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(apptest.Binary, append([]string{"--config", "../configs/app.yaml", "events"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		out = append(out, exit.Stderr...)
	}
	t.Logf("$ app events %s\n%s", strings.Join(args, " "), out)
	return string(out), err
}

// TestEventsHistoryAndReplay registers a user, finds its event in the
// history with `app events list` and `show`, replays the history to
// customer.create-profile while the app runs, and sees the replay in the
// history and no second customer: the handler applies each event once.
func TestEventsHistoryAndReplay(t *testing.T) {
	env := []string{"APP_DATABASE_DSN=" + filepath.Join(t.TempDir(), "app.db")}
	in := apptest.Start(t, "configs/app.yaml", env...)
	user := in.Expect(t, http.StatusCreated, "POST", "/api/identity/users",
		map[string]string{"email": "history-" + apptest.RandomID() + "@example.com", "name": "History", "password": "correct horse battery"})
	userID := user.Str("id")
	customers := func() int {
		list, _ := in.Expect(t, http.StatusOK, "GET", "/api/customers?user_id="+userID, nil).Body["customers"].([]any)
		return len(list)
	}
	apptest.Eventually(t, "the customer of the registered user", func() bool { return customers() == 1 })

	out, err := appEvents(t, env, "list", "--topic", "identity.user.registered", "--aggregate", userID)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 2 || !strings.Contains(lines[1], userID) {
		t.Fatalf("events list: %v, want a header and the registration", err)
	}
	eventID := strings.Fields(lines[1])[0]
	out, err = appEvents(t, env, "show", eventID)
	var shown struct {
		ID, Topic, AggregateID string
		Payload                map[string]any
	}
	if err != nil || json.Unmarshal([]byte(out), &shown) != nil || shown.ID != eventID || shown.Payload["user_id"] != userID {
		t.Fatalf("events show: %v, %+v", err, shown)
	}

	out, err = appEvents(t, env, "replay", "--handler", "customer.create-profile", "--aggregate", userID)
	if err != nil || !strings.Contains(out, "replayed 1 event(s) of identity.user.registered to customer.create-profile") {
		t.Fatalf("events replay: %v", err)
	}
	apptest.Eventually(t, "the replay in the history", func() bool {
		out, _ := appEvents(t, env, "list", "--aggregate", userID, "--topic", "identity.user.registered")
		return strings.Count(out, "customer.create-profile") == 1
	})
	// The replay was forwarded and handled (or absorbed) by now or soon:
	// the customer stays one.
	apptest.Eventually(t, "the outbox forwarded the replay", func() bool {
		r := in.Admin().Expect(t, http.StatusOK, "GET", "/api/ops/stats", nil)
		outbox, _ := r.Body["outbox"].(map[string]any)
		return outbox != nil && outbox["backlog"] == float64(0)
	})
	// ...and its handling did not fail: nothing was poisoned.
	if r := in.Admin().Expect(t, http.StatusOK, "GET", "/api/ops/stats", nil); !strings.Contains(r.Raw, `"total": 0`) && !strings.Contains(r.Raw, `"total":0`) {
		t.Fatalf("the replay was poisoned: %s", r.Raw)
	}
	if n := customers(); n != 1 {
		t.Fatalf("%d customers after the replay, want 1", n)
	}

	// The same history over HTTP, on the admin listener.
	admin := in.Admin()
	listed := admin.Expect(t, http.StatusOK, "GET", "/api/ops/events?topic=identity.user.registered&aggregate="+userID, nil)
	if events, _ := listed.Body["events"].([]any); len(events) != 2 {
		t.Fatalf("GET /api/ops/events: %d events, want the registration and its replay: %s", len(events), listed.Raw)
	}
	if e := admin.Expect(t, http.StatusOK, "GET", "/api/ops/events/"+eventID, nil); e.Str("aggregate_id") != userID || e.Str("replay_for") != "" {
		t.Fatalf("GET /api/ops/events/%s: %s", eventID, e.Raw)
	}
	admin.Expect(t, http.StatusNotFound, "GET", "/api/ops/events/no-such-event", nil)
	admin.Expect(t, http.StatusBadRequest, "GET", "/api/ops/events?since=yesterday", nil)
	admin.Expect(t, http.StatusBadRequest, "GET", "/api/ops/events?user=1", nil)
	in.Expect(t, http.StatusNotFound, "GET", "/api/ops/events", nil) // not on the public listener

	for _, bad := range [][]string{
		{"replay", "--handler", "no.such-handler"},
		{"replay"},
		{"list", "--since", "yesterday"},
		{"show", "no-such-event"},
	} {
		if out, err := appEvents(t, env, bad...); err == nil || strings.TrimSpace(out) == "" {
			t.Errorf("app events %s: succeeded or said nothing", strings.Join(bad, " "))
		}
	}
}

// TestScheduledEvents schedules three registrations into the running app's
// database, as a use case would: `app events scheduled` and GET
// /api/ops/scheduled list them, `app events cancel` cancels one and DELETE
// /api/ops/scheduled/{id} another, and the third arrives once due:
// customer.create-profile creates its customer, not before.
func TestScheduledEvents(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "app.db")
	env := []string{"APP_DATABASE_DSN=" + dsn}
	in := apptest.Start(t, "configs/app.yaml", env...)
	ctx := context.Background()
	cfg := db.DefaultConfig()
	cfg.DSN = dsn
	d, err := db.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })

	soon, later, third := "scheduled-"+apptest.RandomID(), "cancelled-"+apptest.RandomID(), "cancelled-"+apptest.RandomID()
	var soonID, laterID, thirdID string
	var due time.Time
	err = d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		pub := outbox.Publisher(tx)
		due = time.Now().Add(2 * time.Second)
		var err error
		if soonID, err = bus.PublishAt(ctx, pub, topics.UserRegistered, soon, topics.UserRegisteredV1{UserID: soon, Email: soon + "@example.com", Name: "Soon"}, due); err != nil {
			return err
		}
		if laterID, err = bus.PublishAfter(ctx, pub, topics.UserRegistered, later, topics.UserRegisteredV1{UserID: later, Email: later + "@example.com", Name: "Later"}, time.Hour); err != nil {
			return err
		}
		thirdID, err = bus.PublishAfter(ctx, pub, topics.UserRegistered, third, topics.UserRegisteredV1{UserID: third, Email: third + "@example.com", Name: "Third"}, time.Hour)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	out, err := appEvents(t, env, "scheduled")
	if err != nil || !strings.Contains(out, soonID) || !strings.Contains(out, laterID) || !strings.Contains(out, thirdID) {
		t.Fatalf("events scheduled: %v, want the three events listed", err)
	}
	if out, err := appEvents(t, env, "cancel", laterID); err != nil || strings.TrimSpace(out) != "cancelled "+laterID {
		t.Fatalf("events cancel: %v", err)
	}
	if out, err := appEvents(t, env, "cancel", laterID); err == nil || !strings.Contains(out, "no scheduled event") {
		t.Fatalf("events cancel of a cancelled event: %v, want it refused", err)
	}
	admin := in.Admin()
	listed := admin.Expect(t, http.StatusOK, "GET", "/api/ops/scheduled", nil)
	if events, _ := listed.Body["scheduled"].([]any); len(events) != 2 {
		t.Fatalf("GET /api/ops/scheduled: %s, want the two events left", listed.Raw)
	}
	admin.Expect(t, http.StatusOK, "DELETE", "/api/ops/scheduled/"+thirdID, nil)
	admin.Expect(t, http.StatusNotFound, "DELETE", "/api/ops/scheduled/"+thirdID, nil)
	admin.Expect(t, http.StatusBadRequest, "GET", "/api/ops/scheduled?limit=0", nil)

	customers := func(userID string) int {
		list, _ := in.Expect(t, http.StatusOK, "GET", "/api/customers?user_id="+userID, nil).Body["customers"].([]any)
		return len(list)
	}
	apptest.Eventually(t, "the customer of the scheduled registration", func() bool { return customers(soon) == 1 })
	if arrived := time.Now(); arrived.Before(due) {
		t.Fatalf("the scheduled registration was handled %s before it was due", due.Sub(arrived))
	}
	if out, err := appEvents(t, env, "scheduled"); err != nil || strings.Contains(out, soonID) || strings.Contains(out, laterID) {
		t.Fatalf("events scheduled after: %v, want nothing left", err)
	}
	if n := customers(later) + customers(third); n != 0 {
		t.Fatalf("the cancelled registrations made %d customers", n)
	}
}
