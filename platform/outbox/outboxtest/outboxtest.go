// Package outboxtest runs the outbox relay for tests that publish through
// outbox.Publisher and observe the events on a bus.
package outboxtest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
)

// Relay forwards d's outbox to b (which must be started) until the test ends.
func Relay(t testing.TB, d *db.DB, b *bus.Bus) {
	t.Helper()
	r, err := outbox.NewRelay(d, b, outbox.DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
}
