package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/example/monolith/internal/apptest"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/testenv"
)

// TestConsoleInABrowser drives the console at /console in headless
// Chromium (Debian's chromium package): it gives the admin token when the
// page asks, sees a registration's events in the live tail and opens one,
// sees a registration whose customer the database refuses land in the dead
// letters with its reason and attempts, removes the cause, replays it from
// the page after confirming, and sees it leave the list. Screenshots go to
// test-artifacts/console/ at the repository root ($CONSOLE_SCREENSHOTS
// names another directory). $CHROMIUM names another browser than
// chromium.
func TestConsoleInABrowser(t *testing.T) {
	browserName := os.Getenv("CHROMIUM")
	if browserName == "" {
		browserName = "chromium"
	}
	chromium := testenv.RequireCommand(t, browserName)
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "test-artifacts", "console")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil { //nolint:gosec // G703: the test's output directory, named by whoever runs it
		t.Fatal(err)
	}

	token := "console-" + apptest.RandomID() + apptest.RandomID()
	dsn := filepath.Join(t.TempDir(), "app.db")
	in := apptest.Start(t, "configs/app.yaml", "APP_DATABASE_DSN="+dsn, "APP_ADMIN_TOKEN="+token,
		"APP_ADMIN_TRACE_URL=http://localhost:16686/trace/{trace_id}",
		"APP_BUS_RETRY_MAX_RETRIES=2", "APP_BUS_RETRY_INITIAL_INTERVAL=20ms")
	run := apptest.RandomID()

	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)...)
	defer cancel()
	browser, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancel()
	// The first run starts the browser, which lives as long as browser.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(browser, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v\napp logs:\n%s", what, err, in.Logs)
		}
	}
	text := func(sel string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(browser, 20*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	shots := 0
	shot = func(name string) {
		ctx, cancel := context.WithTimeout(browser, 20*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			return
		}
		shots++
		path := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", shots, name))
		if err := os.WriteFile(path, png, 0o600); err != nil { //nolint:gosec // G703: in the test's output directory
			t.Errorf("screenshot %s: %v", name, err)
			return
		}
		abs, _ := filepath.Abs(path)
		t.Logf("screenshot %s", abs)
	}
	defer func() { shot = func(string) {} }()

	// The page loads without the token, then asks for it.
	step("open the console and wait for the token prompt",
		chromedp.Navigate(in.AdminURL+"/console"),
		chromedp.WaitVisible(chromedp.CSS("#token-input")))
	shot("token")
	step("give the token",
		chromedp.SendKeys(chromedp.CSS("#token-input"), token),
		chromedp.Click(chromedp.CSS("#token-submit")),
		chromedp.WaitVisible(chromedp.CSS("#status.ok")))

	// Live: a registration's events appear as they are published and handled.
	ada := in.Expect(t, http.StatusCreated, "POST", "/api/identity/users",
		map[string]string{"email": "ada-" + run + "@example.com", "name": "Ada Lovelace", "password": "correct horse battery"})
	registered := `#live-table tr[data-topic="identity.user.registered"][data-handler="customer.create-profile"][data-result="ok"]`
	step("see the registration's events in the live tail",
		chromedp.WaitVisible(chromedp.CSS(registered)),
		chromedp.WaitVisible(chromedp.CSS(`#live-table tr[data-topic="identity.user.registered"][data-result="published"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#live-table tr[data-topic="customer.customer.created"][data-result="published"]`)))
	shot("live")
	step("open the handled registration",
		chromedp.Click(chromedp.CSS(registered)),
		chromedp.WaitVisible(chromedp.CSS("#detail-envelope")),
		chromedp.WaitVisible(chromedp.CSS("#detail-payload")))
	if envelope := text("#detail-envelope"); !strings.Contains(envelope, ada.Str("id")) || !strings.Contains(envelope, "identity.user.registered") {
		t.Errorf("the envelope shown lacks the user's id as aggregate id:\n%s", envelope)
	}
	if payload := text("#detail-payload"); !strings.Contains(payload, `"email": "ada-`+run+`@example.com"`) {
		t.Errorf("the payload shown lacks the email:\n%s", payload)
	}
	// A trace id shows when the event carries a traceparent, linked to
	// admin.trace_url; else the page says there is none.
	switch trace := text("#detail-trace"); {
	case regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(trace):
		step("the trace id links to the tracing UI", chromedp.WaitVisible(chromedp.CSS(`a#detail-trace[href="http://localhost:16686/trace/`+trace+`"]`)))
	case !strings.HasPrefix(trace, "—"):
		t.Errorf("trace id shown as %q, want 32 hex digits or a dash", trace)
	}
	shot("live-detail")

	// Dead letters: the database refuses the customer of one registration
	// until the trigger is dropped.
	d, err := db.Open(context.Background(), db.Config{Driver: db.DriverSQLite, DSN: dsn, MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	exec := func(sql string) {
		t.Helper()
		if _, err := d.ExecContext(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TRIGGER console_test_refuses_blocked BEFORE INSERT ON customers WHEN NEW.email LIKE 'blocked-%'
		BEGIN SELECT RAISE(ABORT, 'customers of blocked-* emails are refused'); END`)
	blocked := in.Expect(t, http.StatusCreated, "POST", "/api/identity/users",
		map[string]string{"email": "blocked-" + run + "@example.com", "name": "Blocked", "password": "correct horse battery"})
	step("see the poisoned delivery in the live tail",
		chromedp.WaitVisible(chromedp.CSS(`#live-table tr[data-handler="customer.create-profile"][data-result="poisoned"]`)))
	dead := `#dead-table tr[data-handler="customer.create-profile"][data-topic="identity.user.registered"]`
	step("see it in the dead letters",
		chromedp.Click(chromedp.CSS("#tab-dead")),
		chromedp.WaitVisible(chromedp.CSS(dead)))
	if attempts := text(dead + " td.attempts"); attempts != "3" {
		t.Errorf("attempts shown: %q, want 3 (max_retries 2)", attempts)
	}
	if reason := text(dead + " td.reason"); !strings.Contains(reason, "customers of blocked-* emails are refused") {
		t.Errorf("reason shown: %q", reason)
	}
	step("open it", chromedp.Click(chromedp.CSS(dead+" td.reason")), chromedp.WaitVisible(chromedp.CSS("#dead-reason")))
	shot("dead-letters")

	// Fixed, replayed after confirming: the customer is created and the
	// dead letter leaves the list.
	exec(`DROP TRIGGER console_test_refuses_blocked`)
	step("replay it, which asks first",
		chromedp.Click(chromedp.CSS(dead+" button.replay")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")))
	if question := text("#confirm-text"); !strings.Contains(question, "customer.create-profile") {
		t.Errorf("the confirmation does not name the handler: %q", question)
	}
	shot("confirm-replay")
	step("confirm, and see the dead letter leave the list",
		chromedp.Click(chromedp.CSS("#confirm-ok")),
		chromedp.WaitNotPresent(chromedp.CSS(dead)),
		chromedp.WaitVisible(chromedp.CSS("#dead-empty")))
	apptest.Eventually(t, "the replayed registration's customer", func() bool {
		list, _ := in.Expect(t, http.StatusOK, "GET", "/api/customers?user_id="+blocked.Str("id"), nil).Body["customers"].([]any)
		return len(list) == 1
	})
	if entries := text("#audit-table tbody"); !strings.Contains(entries, "replay") {
		t.Errorf("the audit shown lacks the replay: %q", entries)
	}
	shot("dead-letters-replayed")

	// Flow: every handler, with its counts from this process's metrics.
	flowRow := `#flow-table tr[data-handler="customer.create-profile"]`
	step("see the flow with rates",
		chromedp.Click(chromedp.CSS("#tab-flow")),
		chromedp.WaitVisible(chromedp.CSS(`#flow-map rect[data-handler="customer.create-profile"]`)),
		chromedp.WaitVisible(chromedp.CSS(flowRow)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('%s td.rate').textContent !== '—'`, flowRow), chromedp.WithPollingTimeout(15*time.Second)))
	if lag := text(flowRow + " td.lag"); lag == "" {
		t.Errorf("lag cell empty, want a value or a dash")
	}
	shot("flow")
}

// shot saves a screenshot; TestConsoleInABrowser sets it while it runs.
var shot = func(string) {}
