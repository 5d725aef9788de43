package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/monolith/platform/app"
	"github.com/example/monolith/platform/stats"
)

// TestStatsCommand runs `app stats` as the binary does, without contexts:
// on its own against a SQLite file and gochannel, and asking an instance.
func TestStatsCommand(t *testing.T) {
	ctx := context.Background()
	cfg := app.DefaultConfig()
	cfg.Database.DSN = filepath.Join(t.TempDir(), "app.db")
	logger := slog.New(slog.DiscardHandler)
	if err := app.Migrate(cfg, logger); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := app.Stats(ctx, cfg, logger, args, &out)
		return out.String(), err
	}

	out, err := run()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Rates: none", "HANDLER", "poison.store", "Outbox: every committed event forwarded.", "Poison store: 0 message(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("app stats lacks %q:\n%s", want, out)
		}
	}
	out, err = run("--json")
	var r stats.Report
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.Adapter != "gochannel" || r.Rates != nil || len(r.Handlers) != 1 {
		t.Fatalf("app stats --json = %v\n%s", err, out)
	}

	// --admin prints what the instance answers, sending the admin token.
	const token = "a-token-of-sixteen-chars"
	cfg.Admin.Token = token
	instance := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/api/ops/stats" || req.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.Rates = &stats.Rates{Scope: "instance", Instance: "there", WindowSeconds: 60}
		_ = json.NewEncoder(w).Encode(r)
	}))
	defer instance.Close()
	if out, err := run("--admin", instance.URL+"/"); err != nil || !strings.Contains(out, "instance there's, over the last 60s") {
		t.Fatalf("app stats --admin = %v\n%s", err, out)
	}
	cfg.Admin.Token = "another-token-of-16"
	if _, err := run("--admin", instance.URL); err == nil || !strings.Contains(err.Error(), "401 Unauthorized (set APP_ADMIN_TOKEN") {
		t.Fatalf("app stats --admin with a wrong token = %v", err)
	}
	if _, err := run("extra"); err == nil || !strings.Contains(err.Error(), "usage: app stats") {
		t.Fatalf("app stats extra = %v", err)
	}
}
