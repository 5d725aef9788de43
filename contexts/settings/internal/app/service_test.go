package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/example/monolith/contexts/settings"
	"github.com/example/monolith/contexts/settings/internal/app"
	"github.com/example/monolith/contexts/settings/internal/domain"
	"github.com/example/monolith/contexts/settings/internal/store"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

var shop = setting.Schema{Context: "shop", Settings: []setting.Definition{
	setting.Bool("open", true, "whether the shop takes orders"),
	setting.Enum("tier", "basic", []string{"basic", "pro"}, "tier of new customers"),
	setting.Int("limit", 10, 1, 100, "items per order"),
}}

// service is a settings service on the harness's database, publishing
// on its bus as the module's does.
func service(h *contexttest.Harness) *app.Service {
	return app.NewService(h.DB, h.Bus, slog.New(slog.DiscardHandler))
}

// updates reads the next n settings.setting.updated events, as values by
// context/key.
func updates(t *testing.T, h *contexttest.Harness, n int) map[string]string {
	t.Helper()
	got := map[string]string{}
	for range n {
		u := contexttest.Next(t, h, topics.SettingUpdated).Payload
		got[u.Context+"/"+u.Key] = string(u.Value)
	}
	return got
}

// values lists a context's current values by key.
func values(t *testing.T, s *app.Service, contextName string) map[string]string {
	t.Helper()
	listed, err := s.List(context.Background(), contextName)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, st := range listed {
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
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		ctx := context.Background()
		s := service(h)
		if _, err := s.List(ctx, "shop"); !errors.Is(err, domain.ErrContextNotFound) {
			t.Fatalf("List before StoreSchema = %v, want ErrContextNotFound", err)
		}
		if err := s.StoreSchema(ctx, shop); err != nil {
			t.Fatal(err)
		}
		listed, err := s.List(ctx, "shop")
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != 3 {
			t.Fatalf("List = %+v, want the 3 declared settings", listed)
		}
		limit, tier := listed[0], listed[2]
		if limit.Key != "limit" || limit.Type != setting.TypeInt || string(limit.Value) != "10" || *limit.Min != 1 || *limit.Max != 100 ||
			limit.Description != "items per order" {
			t.Fatalf("limit = %+v", limit)
		}
		if tier.Key != "tier" || string(tier.Value) != `"basic"` || strings.Join(tier.Allowed, ",") != "basic,pro" || tier.Min != nil {
			t.Fatalf("tier = %+v", tier)
		}
		// No value stored: nothing to publish.
		contexttest.None(t, h, topics.SettingUpdated)

		update(t, s, "open", "false")
		update(t, s, "tier", `"pro"`)
		updates(t, h, 2)

		// A restarted instance stores the schema again: its stored values
		// are published for every instance's cache.
		if err := s.StoreSchema(ctx, shop); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"shop/open": "false", "shop/tier": `"pro"`}
		if got := updates(t, h, 2); !maps.Equal(got, want) {
			t.Fatalf("republished %v, want %v", got, want)
		}
		if got := values(t, s, "shop"); !maps.Equal(got, map[string]string{"open": "false", "tier": `"pro"`, "limit": "10"}) {
			t.Fatalf("values after the second StoreSchema = %v", got)
		}
	}, settings.Module)
}

func TestStoreSchemaDropsValuesItNoLongerAccepts(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		ctx := context.Background()
		s := service(h)
		if err := s.StoreSchema(ctx, shop); err != nil {
			t.Fatal(err)
		}
		update(t, s, "open", "false")
		update(t, s, "tier", `"pro"`)
		update(t, s, "limit", "50")
		updates(t, h, 3)

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
		stored, err := store.New(h.DB).ListValues(ctx, "shop")
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != 1 || stored[0].Key != "limit" {
			t.Fatalf("stored values = %+v, want only limit", stored)
		}
		if got := updates(t, h, 1); !maps.Equal(got, map[string]string{"shop/limit": "50"}) {
			t.Fatalf("republished %v, want only the kept limit", got)
		}
		contexttest.None(t, h, topics.SettingUpdated)
	}, settings.Module)
}

func TestInvalidSchemaStoresNothing(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		ctx := context.Background()
		s := service(h)
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
	}, settings.Module)
}

func TestUpdate(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		ctx := context.Background()
		s := service(h)
		if err := s.StoreSchema(ctx, shop); err != nil {
			t.Fatal(err)
		}

		// Valid: stored and published, in canonical form.
		got, err := s.Update(ctx, "shop", "tier", json.RawMessage(` "pro"`))
		if err != nil || string(got) != `"pro"` {
			t.Fatalf("Update(tier, pro) = %s, %v", got, err)
		}
		if u := updates(t, h, 1); !maps.Equal(u, map[string]string{"shop/tier": `"pro"`}) {
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
		contexttest.None(t, h, topics.SettingUpdated)

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
		var rejected []topics.ValidationFailedV1
		for range 4 {
			rejected = append(rejected, contexttest.Next(t, h, topics.ValidationFailed).Payload)
		}
		i := slices.IndexFunc(rejected, func(r topics.ValidationFailedV1) bool { return r.Key == "tier" })
		if i < 0 {
			t.Fatalf("settings.validation.failed = %+v, none for tier", rejected)
		}
		tier := rejected[i]
		if tier.Context != "shop" || string(tier.Value) != `"gold"` || tier.Reason != "tier must be one of basic, pro" {
			t.Fatalf("settings.validation.failed = %+v", tier)
		}
		if got := values(t, s, "shop"); !maps.Equal(got, map[string]string{"open": "true", "tier": `"pro"`, "limit": "10"}) {
			t.Fatalf("values after rejected updates = %v, want them unchanged", got)
		}
		contexttest.None(t, h, topics.SettingUpdated)

		// Unknown setting or context.
		for _, target := range [][2]string{{"shop", "missing"}, {"nowhere", "open"}} {
			if _, err := s.Update(ctx, target[0], target[1], json.RawMessage("true")); !errors.Is(err, domain.ErrSettingNotFound) {
				t.Fatalf("Update(%s/%s) = %v, want ErrSettingNotFound", target[0], target[1], err)
			}
		}
		if _, err := s.List(ctx, "nowhere"); !errors.Is(err, domain.ErrContextNotFound) {
			t.Fatalf("List(nowhere) = %v, want ErrContextNotFound", err)
		}
	}, settings.Module)
}
