package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
)

// TestHistoryListsEventsAndReplays: on each database the history lists what
// was published, in commit order; a replay writes the events it selects
// into the outbox again, with their ids and envelopes, addressed to one
// handler, and the relay forwards them so; the history lists the replays
// apart. (The conformance case ReplayHistory, in platform/bus, replays to a
// new handler end to end on every adapter.)
func TestHistoryListsEventsAndReplays(t *testing.T) {
	dbtest.Each(t, []db.Migrations{outbox.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		out := &recorder{}
		startRelay(t, d, out)
		batch := make([]bus.Item[order], 30)
		for i := range batch {
			batch[i] = bus.Item[order]{AggregateID: fmt.Sprint("order-", i%3), Payload: order{Seq: i}}
		}
		if err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
			return bus.PublishBatch(ctx, outbox.Publisher(tx), placed, batch)
		}); err != nil {
			t.Fatal(err)
		}

		const late = "shop.count-late"
		if _, err := outbox.ReplayHistory(ctx, d, late, placed.Name(), outbox.HistoryFilter{Topic: "shop.order.cancelled"}); err == nil {
			t.Fatal("a replay of another topic than the handler's was accepted")
		}
		replayed, err := outbox.ReplayHistory(ctx, d, late, placed.Name(), outbox.HistoryFilter{AggregateID: "order-1"})
		if err != nil || replayed != 10 {
			t.Fatalf("replayed %d events (%v), want the 10 of order-1", replayed, err)
		}
		// Through a pattern, as for a pattern handler: the same events.
		if n, err := outbox.ReplayHistory(ctx, d, late, "shop.*.placed", outbox.HistoryFilter{AggregateID: "order-1"}); err != nil || n != 10 {
			t.Fatalf("replayed %d events through a pattern (%v), want 10", n, err)
		}

		history, err := outbox.History(ctx, d, outbox.HistoryFilter{AggregateID: "order-1"})
		if err != nil {
			t.Fatal(err)
		}
		var originals, replays []string
		for _, e := range history {
			if e.Topic != placed.Name() || e.AggregateID != "order-1" || e.OccurredAt.IsZero() {
				t.Fatalf("history event %+v", e)
			}
			switch e.ReplayFor {
			case "":
				originals = append(originals, e.ID)
			case late:
				replays = append(replays, e.ID)
			default:
				t.Fatalf("replay for %q", e.ReplayFor)
			}
		}
		if len(originals) != 10 || !slices.Equal(replays, append(slices.Clone(originals), originals...)) {
			t.Fatalf("history of order-1: %d events and replays %v; want 10, replayed twice in commit order with their ids", len(originals), replays)
		}
		if limited, _ := outbox.History(ctx, d, outbox.HistoryFilter{Limit: 5}); len(limited) != 5 {
			t.Fatalf("History with limit 5 returned %d events", len(limited))
		}

		e, err := outbox.HistoryEventByID(ctx, d, originals[0])
		if err != nil || e.ReplayFor != "" || e.AggregateID != "order-1" || e.Metadata[bus.MetaEventID] != originals[0] || string(e.Payload) != `{"seq":1}` {
			t.Fatalf("event %s: %+v, %v", originals[0], e, err)
		}
		if _, err := outbox.HistoryEventByID(ctx, d, "no-such-event"); !errors.Is(err, outbox.ErrEventNotFound) {
			t.Fatalf("an unknown id: %v", err)
		}

		// The relay forwards the replays, addressed to the handler.
		waitLen(t, out, 50)
		out.mu.Lock()
		defer out.mu.Unlock()
		for _, m := range out.msgs[30:] {
			if m.Metadata.Get(bus.MetaReplayFor) != late || m.Metadata.Get(bus.MetaAggregateID) != "order-1" {
				t.Fatalf("forwarded replay %s with metadata %v", m.UUID, m.Metadata)
			}
		}
	})
}
