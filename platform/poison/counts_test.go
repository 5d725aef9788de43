package poison_test

import (
	"context"
	"slices"
	"testing"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/poison"
	"github.com/example/monolith/platform/poison/internal/store"
)

func TestCountsByTopicAndHandler(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := poison.NewStore(d)
		if counts, err := s.Counts(ctx); err != nil || len(counts) != 0 {
			t.Fatalf("counts of an empty store: %v, %v", counts, err)
		}
		for _, p := range []bus.PoisonedMessage{
			poisoned("e1", "shop.order.placed", "billing.charge"),
			poisoned("e2", "shop.order.placed", "billing.charge"),
			poisoned("e2", "shop.order.placed", "mail.confirm"),
			poisoned("e3", "shop.order.cancelled", "billing.charge"),
			poisoned("e1", "shop.order.placed", "billing.charge"), // a redelivery: same row
		} {
			if err := s.Save(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		counts, err := s.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []poison.Count{
			{Topic: "shop.order.cancelled", Handler: "billing.charge", Messages: 1},
			{Topic: "shop.order.placed", Handler: "billing.charge", Messages: 2},
			{Topic: "shop.order.placed", Handler: "mail.confirm", Messages: 1},
		}
		if !slices.Equal(counts, want) {
			t.Fatalf("counts %v, want %v", counts, want)
		}
	})
}
