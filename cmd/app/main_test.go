package main

import (
	"log/slog"
	"slices"
	"strings"
	"testing"

	"go.uber.org/fx"

	"github.com/example/monolith/platform/app"
)

// TestWiring checks every context's module against the platform: a missing
// or duplicated dependency fails here, without a database or broker.
func TestWiring(t *testing.T) {
	if err := app.Validate(app.DefaultConfig(), slog.Default(), contexts...); err != nil {
		t.Fatal(err)
	}
	// The check bites: a module that needs something nobody provides.
	type missing struct{}
	broken := slices.Concat(contexts, []fx.Option{fx.Module("broken", fx.Invoke(func(missing) {}))})
	if err := app.Validate(app.DefaultConfig(), slog.Default(), broken...); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Validate with an unsatisfied dependency = %v", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	if err := run([]string{"frobnicate"}); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("run(frobnicate) = %v", err)
	}
}
