package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/example/monolith/internal/apptest"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/topics"
)

// TestPoisonStoreAndReplay walks an operator's day: a suspension arrives
// before its user's registration, exhausts its retries and lands in the
// poison store; replayed too early it fails and comes back; replayed after
// the registration it takes effect. Garbage in the broker is poisoned and
// purged. Both the CLI and HTTP are used. Events are injected into the
// broker directly, so this runs on the brokers only.
func TestPoisonStoreAndReplay(t *testing.T) {
	for _, b := range []struct {
		name string
		new  func(*testing.T) *apptest.Broker
	}{{"amqp", apptest.AMQP}, {"redisstream", apptest.Redis}} {
		t.Run(b.name, func(t *testing.T) { poisonAndReplay(t, b.new(t)) })
	}
}

func poisonAndReplay(t *testing.T, b *apptest.Broker) {
	token := "e2e-" + apptest.RandomID() + apptest.RandomID()
	env := append([]string{
		"APP_DATABASE_DSN=" + dbtest.Config(t, db.DriverPostgres).DSN,
		"APP_BUS_RETRY_MAX_RETRIES=2", "APP_BUS_RETRY_INITIAL_INTERVAL=20ms",
	}, b.Env...)
	in := apptest.Start(t, b.Config, append(env, "APP_ADMIN_TOKEN="+token)...)
	ops := in.Admin()
	// run is the command's standard output, and its error output when it fails.
	run := func(args ...string) (string, error) {
		cmd := exec.Command(apptest.Binary, append([]string{"--config", "../" + b.Config, "poison"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if exit, ok := errors.AsType[*exec.ExitError](err); ok {
			out = append(out, exit.Stderr...)
		}
		t.Logf("$ app poison %s\n%s", strings.Join(args, " "), out)
		return string(out), err
	}
	cli := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("app poison %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	const handler = "customer.deactivate-on-user-suspended"
	poisoned := func() []any {
		list, _ := ops.Expect(t, http.StatusOK, "GET", "/api/ops/poison?handler="+handler, nil).Body["messages"].([]any)
		return list
	}

	userID := "early-" + apptest.RandomID()
	suspended, err := bus.NewMessage(bus.WithCorrelationID(context.Background(), "corr-"+userID), topics.UserSuspended, userID, topics.UserSuspendedV1{UserID: userID})
	if err != nil {
		t.Fatal(err)
	}
	b.Inject(t, topics.UserSuspended.Name(), suspended, false)
	apptest.Eventually(t, "the early suspension in the poison store", func() bool { return len(poisoned()) == 1 })
	first := poisoned()[0].(map[string]any)
	if first["message_id"] != suspended.UUID || first["topic"] != topics.UserSuspended.Name() || first["attempts"] != float64(3) ||
		!strings.Contains(first["reason"].(string), "not found") {
		t.Fatalf("stored poisoned message %v", first)
	}
	id := first["id"].(string)
	if out := cli("list", "--handler", handler); !strings.Contains(out, id) || !strings.Contains(out, topics.UserSuspended.Name()) {
		t.Fatalf("poison list does not show %s", id)
	}
	if out := cli("show", id); !strings.Contains(out, `"correlation_id": "corr-`+userID) || !strings.Contains(out, userID) {
		t.Fatal("poison show lacks the original metadata and payload")
	}

	// Replayed before the registration: fails again, back in the store once.
	cli("replay", id)
	apptest.Eventually(t, "the replay to fail and return to the store", func() bool {
		list := poisoned()
		return len(list) == 1 && list[0].(map[string]any)["id"] != id
	})
	time.Sleep(500 * time.Millisecond)
	if n := len(poisoned()); n != 1 {
		t.Fatalf("%d poisoned messages after one failed replay, want 1 (no loop)", n)
	}

	// The registration arrives; the replay now deactivates the customer.
	registered, err := bus.NewMessage(context.Background(), topics.UserRegistered, userID, topics.UserRegisteredV1{UserID: userID, Email: userID + "@example.com", Name: "Early"})
	if err != nil {
		t.Fatal(err)
	}
	b.Inject(t, topics.UserRegistered.Name(), registered, false)
	var customerID string
	apptest.Eventually(t, "the customer of the late registration", func() bool {
		list, _ := in.Expect(t, http.StatusOK, "GET", "/api/customers?user_id="+userID, nil).Body["customers"].([]any)
		if len(list) == 1 {
			customerID = list[0].(map[string]any)["id"].(string)
		}
		return customerID != ""
	})
	retry := poisoned()[0].(map[string]any)["id"].(string)
	ops.Expect(t, http.StatusAccepted, "POST", "/api/ops/poison/"+retry+"/replay", nil)
	apptest.Eventually(t, "the replayed suspension to deactivate the customer", func() bool {
		return in.Expect(t, http.StatusOK, "GET", "/api/customers/"+customerID, nil).Body["active"] == false
	})
	if n := len(poisoned()); n != 0 {
		t.Fatalf("%d poisoned messages left after a successful replay", n)
	}

	// Garbage written into the broker is poisoned at once, and purged.
	for i := range 3 {
		b.Inject(t, topics.UserRegistered.Name(), message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("garbage %d", i))), true)
	}
	apptest.Eventually(t, "3 garbage messages poisoned", func() bool {
		return ops.Expect(t, http.StatusOK, "GET", "/api/ops/poison?topic=identity.user.registered", nil).Body["total"] == float64(3)
	})
	// Purging needs a filter or an explicit all.
	if out, err := run("purge"); err == nil || !strings.Contains(out, "--all") {
		t.Fatalf("app poison purge without a filter: %v\n%s", err, out)
	}
	if r := ops.Do(t, "DELETE", "/api/ops/poison", nil); r.Status != http.StatusBadRequest || !strings.Contains(r.Raw, "all=true") {
		t.Fatalf("DELETE /api/ops/poison without a filter = %d %s, want 400 naming all=true", r.Status, r.Raw)
	}
	if out := cli("purge", "--topic", topics.UserRegistered.Name()); !strings.Contains(out, "purged 3 message(s)") {
		t.Fatalf("purge printed %q", out)
	}
	if total := ops.Expect(t, http.StatusOK, "GET", "/api/ops/poison", nil).Body["total"]; total != float64(0) {
		t.Fatalf("%v messages left after purge", total)
	}
	if purged := ops.Expect(t, http.StatusOK, "DELETE", "/api/ops/poison?all=true", nil).Body["purged"]; purged != float64(0) {
		t.Fatalf("purge all=true of an empty store purged %v", purged)
	}

	// The audit: who did what, newest first, on the CLI and over HTTP.
	tokenID := httpx.TokenID(token)
	want := []string{
		tokenID + " http purge all 0",
		"local cli purge topic=" + topics.UserRegistered.Name() + " 3",
		tokenID + " http replay " + retry + " 1",
		"local cli replay " + id + " 1",
	}
	lines := strings.Split(strings.TrimSpace(cli("audit")), "\n")[1:]
	if len(lines) != len(want) {
		t.Fatalf("app poison audit has %d entries, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		if got := strings.Join(strings.Fields(line)[1:], " "); got != want[i] {
			t.Errorf("app poison audit entry %d = %q, want %q", i, got, want[i])
		}
	}
	entries, _ := ops.Expect(t, http.StatusOK, "GET", "/api/ops/poison/audit", nil).Body["entries"].([]any)
	if len(entries) != len(want) {
		t.Fatalf("GET /api/ops/poison/audit: %d entries, want %d", len(entries), len(want))
	}
	if e := entries[2].(map[string]any); e["who"] != tokenID || e["via"] != "http" || e["action"] != "replay" || e["message_id"] != retry ||
		e["topic"] != topics.UserSuspended.Name() || e["handler"] != handler || e["messages"] != float64(1) {
		t.Fatalf("audit entry of the HTTP replay: %v", e)
	}
}
