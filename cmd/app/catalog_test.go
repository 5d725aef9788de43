package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/monolith/platform/app"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/catalog"
	"github.com/example/monolith/platform/db"
)

// repoRoot is the repository, seen from this package.
const repoRoot = "../.."

// unreachable is a configuration whose broker and database do not answer:
// connecting to either fails.
func unreachable() app.Config {
	cfg := app.DefaultConfig()
	cfg.Bus.Adapter = bus.AdapterAMQP
	cfg.Bus.AMQP.URL = "amqp://guest:guest@127.0.0.1:1/"
	cfg.Bus.ConnectTimeout = time.Second
	cfg.Database.Driver, cfg.Database.DSN = db.DriverPostgres, "postgres://nobody@127.0.0.1:1/none"
	return cfg
}

// TestCatalogOfTheBinary builds the catalog of the binary's contexts
// without a broker or database, and finds in it every declared topic and
// every context.
func TestCatalogOfTheBinary(t *testing.T) {
	cfg := unreachable()
	c, err := app.Catalog(cfg, slog.Default(), contexts...)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, topic := range c.Topics {
		names = append(names, topic.Name)
	}
	for _, declared := range bus.Topics() {
		if !slices.Contains(names, declared.Name) {
			t.Errorf("declared topic %s is missing from the catalog", declared.Name)
		}
	}
	dirs, err := filepath.Glob(filepath.Join(repoRoot, "contexts", "*", "module.go"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no context found: %v", err)
	}
	for _, d := range dirs {
		if name := filepath.Base(filepath.Dir(d)); !slices.Contains(c.Contexts(), name) {
			t.Errorf("context %s is missing from the catalog's contexts %v", name, c.Contexts())
		}
	}
	if len(c.ConsumersOf(cfg.Bus.PoisonTopic)) == 0 {
		t.Error("nothing handles the poison topic: the poison store's handler is missing")
	}
	for _, r := range c.Routes {
		if r.Context != catalog.PlatformContext && !slices.Contains(c.Contexts(), r.Context) {
			t.Errorf("route %s %s belongs to %q, no context", r.Method, r.Path, r.Context)
		}
	}
}

func TestCatalogCommand(t *testing.T) {
	var out bytes.Buffer
	if err := app.PrintCatalog(unreachable(), slog.Default(), []string{"--format", "json"}, &out, contexts...); err != nil {
		t.Fatal(err)
	}
	var c struct{ Topics, Handlers, Routes []any }
	if err := json.Unmarshal(out.Bytes(), &c); err != nil || len(c.Topics) == 0 || len(c.Handlers) == 0 || len(c.Routes) == 0 {
		t.Fatalf("app catalog --format json = %v:\n%s", err, out.String())
	}
	for _, args := range [][]string{{"--format", "html"}, {"--frmat", "json"}, {"table"}} {
		err := app.PrintCatalog(unreachable(), slog.Default(), args, &out, contexts...)
		if err == nil || !strings.Contains(err.Error(), "usage: app catalog") && !strings.Contains(err.Error(), "unknown catalog format") {
			t.Errorf("app catalog %v = %v, want an error showing the usage or formats", args, err)
		}
	}
}

// TestCatalogOutputIsStable checks that two runs print the same, as the
// docs check needs.
func TestCatalogOutputIsStable(t *testing.T) {
	for _, format := range catalog.Formats() {
		var a, b bytes.Buffer
		for _, out := range []*bytes.Buffer{&a, &b} {
			if err := app.PrintCatalog(app.DefaultConfig(), slog.Default(), []string{"--format", format}, out, contexts...); err != nil {
				t.Fatal(err)
			}
		}
		if a.String() != b.String() {
			t.Errorf("app catalog --format %s prints differently twice", format)
		}
	}
}
