package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/monolith/contexts/settings/internal/app"
	"github.com/example/monolith/contexts/settings/internal/domain"
	"github.com/example/monolith/contexts/settings/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox/outboxtest"
	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

var shop = setting.Schema{Context: "shop", Settings: []setting.Definition{
	setting.Bool("open", true, "whether the shop takes orders"),
	setting.Enum("tier", "basic", []string{"basic", "pro"}, "tier of new customers"),
	setting.Int("limit", 10, 1, 100, "items per order"),
}}

// events records what the settings context publishes on a real in-process
// bus: settings.setting.updated through the outbox and its relay,
// settings.validation.failed straight to the bus.
type events struct {
	mu       sync.Mutex
	updated  []topics.SettingUpdatedV1
	rejected []topics.ValidationFailedV1
}

func (e *events) count() (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.updated), len(e.rejected)
}

// take returns the updates recorded so far and forgets them.
func (e *events) take() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	got := map[string]string{}
	for _, u := range e.updated {
		got[u.Context+"/"+u.Key] = string(u.Value)
	}
	e.updated = nil
	return got
}

func newService(t *testing.T, d *db.DB) (*app.Service, *events) {
	t.Helper()
	b, err := bus.New(context.Background(), bus.DefaultConfig(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	rec := &events{}
	err = b.Register(
		bus.NewHandler("test.record-updated", topics.SettingUpdated, func(_ context.Context, e bus.Event[topics.SettingUpdatedV1]) error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.updated = append(rec.updated, e.Payload)
			return nil
		}),
		bus.NewHandler("test.record-rejected", topics.ValidationFailed, func(_ context.Context, e bus.Event[topics.ValidationFailedV1]) error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.rejected = append(rec.rejected, e.Payload)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	outboxtest.Relay(t, d, b) // before the first publish: it creates the outbox tables
	return app.NewService(d, b, slog.New(slog.DiscardHandler)), rec
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// settle gives an event that should not have been published the time to
// arrive: the relay polls the outbox and gochannel delivers asynchronously.
func settle() { time.Sleep(500 * time.Millisecond) }

// values lists a context's current values by key.
func values(t *testing.T, s *app.Service, contextName string) map[string]string {
	t.Helper()
	settings, err := s.List(context.Background(), contextName)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, st := range settings {
		got[st.Key] = string(st.Value)
	}
	return got
}

func update(t *testing.T, s *app.Service, key, value string) {
	t.Helper()
	if _, err := s.Update(context.Background(), "shop", key, json.RawMessage(value)); err != nil {
		t.Fatalf("Update(%s, %s): %v", key, value, err)
	}
}

func TestStoreSchemaStoresDefinitionsAndRepublishesValues(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, rec := newService(t, d)
		if _, err := s.List(ctx, "shop"); !errors.Is(err, domain.ErrContextNotFound) {
			t.Fatalf("List before StoreSchema = %v, want ErrContextNotFound", err)
		}
		if err := s.StoreSchema(ctx, shop); err != nil {
			t.Fatal(err)
		}
		settings, err := s.List(ctx, "shop")
		if err != nil {
			t.Fatal(err)
		}
		if len(settings) != 3 {
			t.Fatalf("List = %+v, want the 3 declared settings", settings)
		}
		limit, tier := settings[0], settings[2]
		if limit.Key != "limit" || limit.Type != setting.TypeInt || string(limit.Value) != "10" || *limit.Min != 1 || *limit.Max != 100 ||
			limit.Description != "items per order" {
			t.Fatalf("limit = %+v", limit)
		}
		if tier.Key != "tier" || string(tier.Value) != `"basic"` || strings.Join(tier.Allowed, ",") != "basic,pro" || tier.Min != nil {
			t.Fatalf("tier = %+v", tier)
		}
		settle()
		if n, _ := rec.count(); n != 0 {
			t.Fatalf("%d settings.setting.updated with no value stored, want none", n)
		}

		update(t, s, "open", "false")
		update(t, s, "tier", `"pro"`)
		waitFor(t, "the two updates", func() bool { n, _ := rec.count(); return n == 2 })
		rec.take()

		// A restarted instance stores the schema again: its stored values
		// are published for every instance's cache.
		if err := s.StoreSchema(ctx, shop); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the stored values republished", func() bool { n, _ := rec.count(); return n == 2 })
		want := map[string]string{"shop/open": "false", "shop/tier": `"pro"`}
		if got := rec.take(); !maps.Equal(got, want) {
			t.Fatalf("republished %v, want %v", got, want)
		}
		if got := values(t, s, "shop"); !maps.Equal(got, map[string]string{"open": "false", "tier": `"pro"`, "limit": "10"}) {
			t.Fatalf("values after the second StoreSchema = %v", got)
		}
	})
}

func TestStoreSchemaDropsValuesItNoLongerAccepts(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, rec := newService(t, d)
		if err := s.StoreSchema(ctx, shop); err != nil {
			t.Fatal(err)
		}
		update(t, s, "open", "false")
		update(t, s, "tier", `"pro"`)
		update(t, s, "limit", "50")
		waitFor(t, "the three updates", func() bool { n, _ := rec.count(); return n == 3 })
		rec.take()

		// open is gone, tier no longer allows "pro", limit still accepts 50.
		next := setting.Schema{Context: "shop", Settings: []setting.Definition{
			setting.Enum("tier", "basic", []string{"basic", "enterprise"}, "tier of new customers"),
			setting.Int("limit", 10, 1, 60, "items per order"),
		}}
		if err := s.StoreSchema(ctx, next); err != nil {
			t.Fatal(err)
		}
		if got := values(t, s, "shop"); !maps.Equal(got, map[string]string{"tier": `"basic"`, "limit": "50"}) {
			t.Fatalf("values after the new schema = %v, want tier back to its default", got)
		}
		stored, err := store.New(d).ListValues(ctx, "shop")
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != 1 || stored[0].Key != "limit" {
			t.Fatalf("stored values = %+v, want only limit", stored)
		}
		waitFor(t, "limit republished", func() bool { n, _ := rec.count(); return n >= 1 })
		settle()
		if got := rec.take(); !maps.Equal(got, map[string]string{"shop/limit": "50"}) {
			t.Fatalf("republished %v, want only the kept limit", got)
		}
	})
}

func TestInvalidSchemaStoresNothing(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, _ := newService(t, d)
		open := setting.Bool("open", true, "")
		badDefault := setting.Bool("closed", false, "")
		badDefault.Default = json.RawMessage(`"no"`)
		unknownType := setting.Bool("odd", false, "")
		unknownType.Type = "float"
		for name, schema := range map[string]setting.Schema{
			"no context":      {Settings: []setting.Definition{open}},
			"duplicate key":   {Context: "shop", Settings: []setting.Definition{open, open}},
			"invalid default": {Context: "shop", Settings: []setting.Definition{open, badDefault}},
			"unknown type":    {Context: "shop", Settings: []setting.Definition{open, unknownType}},
		} {
			if err := s.StoreSchema(ctx, schema); !errors.Is(err, domain.ErrInvalidSchema) {
				t.Errorf("%s: StoreSchema = %v, want ErrInvalidSchema", name, err)
			}
		}
		if _, err := s.List(ctx, "shop"); !errors.Is(err, domain.ErrContextNotFound) {
			t.Fatalf("List after invalid schemas = %v, want ErrContextNotFound", err)
		}
	})
}

func TestUpdate(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, rec := newService(t, d)
		if err := s.StoreSchema(ctx, shop); err != nil {
			t.Fatal(err)
		}

		// Valid: stored and published, in canonical form.
		got, err := s.Update(ctx, "shop", "tier", json.RawMessage(` "pro"`))
		if err != nil || string(got) != `"pro"` {
			t.Fatalf("Update(tier, pro) = %s, %v", got, err)
		}
		waitFor(t, "settings.setting.updated", func() bool { n, _ := rec.count(); return n == 1 })
		if u := rec.take(); !maps.Equal(u, map[string]string{"shop/tier": `"pro"`}) {
			t.Fatalf("published %v", u)
		}
		if v := values(t, s, "shop")["tier"]; v != `"pro"` {
			t.Fatalf("stored tier = %s, want \"pro\"", v)
		}

		// Unchanged, spelt differently, or equal to the default while
		// nothing is stored: no event.
		update(t, s, "tier", `"pro"`)
		update(t, s, "tier", `"\u0070ro"`)
		update(t, s, "limit", "10")
		settle()
		if n, _ := rec.count(); n != 0 {
			t.Fatalf("%d settings.setting.updated for values that did not change, want none", n)
		}

		// Invalid: rejected, published as such, nothing stored.
		for _, tc := range []struct{ key, value, reason string }{
			{"tier", `"gold"`, "tier must be one of basic, pro"},
			{"limit", "1000", "limit must be between 1 and 100"},
			{"open", `"yes"`, "open must be true or false"},
			{"open", "null", "open must not be null"},
		} {
			_, err := s.Update(ctx, "shop", tc.key, json.RawMessage(tc.value))
			var invalid domain.ValidationError
			if !errors.As(err, &invalid) || invalid.Key != tc.key || invalid.Reason != tc.reason {
				t.Fatalf("Update(%s, %s) = %v, want a validation error %q", tc.key, tc.value, err, tc.reason)
			}
		}
		waitFor(t, "settings.validation.failed", func() bool { _, n := rec.count(); return n == 4 })
		rec.mu.Lock()
		i := slices.IndexFunc(rec.rejected, func(r topics.ValidationFailedV1) bool { return r.Key == "tier" })
		tier := rec.rejected[i]
		rec.mu.Unlock()
		if tier.Context != "shop" || string(tier.Value) != `"gold"` || tier.Reason != "tier must be one of basic, pro" {
			t.Fatalf("settings.validation.failed = %+v", tier)
		}
		if got := values(t, s, "shop"); !maps.Equal(got, map[string]string{"open": "true", "tier": `"pro"`, "limit": "10"}) {
			t.Fatalf("values after rejected updates = %v, want them unchanged", got)
		}
		if n, _ := rec.count(); n != 0 {
			t.Fatalf("%d settings.setting.updated for rejected values, want none", n)
		}

		// Unknown setting or context.
		for _, target := range [][2]string{{"shop", "missing"}, {"nowhere", "open"}} {
			if _, err := s.Update(ctx, target[0], target[1], json.RawMessage("true")); !errors.Is(err, domain.ErrSettingNotFound) {
				t.Fatalf("Update(%s/%s) = %v, want ErrSettingNotFound", target[0], target[1], err)
			}
		}
		if _, err := s.List(ctx, "nowhere"); !errors.Is(err, domain.ErrContextNotFound) {
			t.Fatalf("List(nowhere) = %v, want ErrContextNotFound", err)
		}
	})
}
