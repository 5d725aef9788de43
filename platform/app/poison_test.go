package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/example/monolith/platform/app"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/poison"
)

// TestPoisonPurgeNeedsAFilterOrAll runs `app poison purge` and `app poison
// audit` as the binary does, on a SQLite file.
func TestPoisonPurgeNeedsAFilterOrAll(t *testing.T) {
	ctx := context.Background()
	cfg := app.DefaultConfig()
	cfg.Database.DSN = filepath.Join(t.TempDir(), "app.db")
	logger := slog.New(slog.DiscardHandler)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := app.Poison(ctx, cfg, logger, args, &out)
		return out.String(), err
	}
	if _, err := run("list"); err != nil { // migrates
		t.Fatal(err)
	}
	d, err := db.Open(ctx, cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	s := poison.NewStore(d)
	for _, m := range []struct{ id, topic string }{{"e1", "shop.order.placed"}, {"e2", "shop.order.placed"}, {"e3", "shop.order.shipped"}} {
		if err := s.Save(ctx, bus.PoisonedMessage{ID: m.id, Topic: m.topic, Handler: "billing.charge", Reason: "boom", Attempts: 3, Payload: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	_ = d.Close()

	for _, args := range [][]string{{"purge"}, {"purge", "--limit", "5"}, {"replay"}} {
		if out, err := run(args...); err == nil || !strings.Contains(err.Error(), "--all") {
			t.Fatalf("app poison %s = %q, %v; want an error naming --all", strings.Join(args, " "), out, err)
		}
	}
	if _, err := run("purge", "some-id", "--all"); err == nil || !strings.Contains(err.Error(), "flags go before the ID") {
		t.Fatalf("flags after the ID: %v", err)
	}
	if _, err := run("purge", "--all", "some-id"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("an ID and --all: %v", err)
	}
	if out, err := run("purge", "--topic", "shop.order.placed"); err != nil || out != "purged 2 message(s)\n" {
		t.Fatalf("purge --topic = %q, %v", out, err)
	}
	if out, err := run("purge", "--all"); err != nil || out != "purged 1 message(s)\n" {
		t.Fatalf("purge --all = %q, %v", out, err)
	}

	out, err := run("audit")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		`^AT\s+WHO\s+VIA\s+ACTION\s+TARGET\s+MESSAGES$`,
		`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+local\s+cli\s+purge\s+all\s+1$`,
		`^\S+\s+local\s+cli\s+purge\s+topic=shop.order.placed\s+2$`,
	}
	if len(lines) != len(want) {
		t.Fatalf("app poison audit:\n%s\nwant %d lines", out, len(want))
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("app poison audit line %d = %q, want %s", i, lines[i], re)
		}
	}
}
