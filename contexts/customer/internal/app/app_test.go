package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/monolith/contexts/customer"
	"github.com/example/monolith/contexts/customer/internal/app"
	"github.com/example/monolith/contexts/customer/internal/domain"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

// service is a customer service on the harness's database, with a settings
// cache of its own.
func service(h *contexttest.Harness) (*app.Service, *setting.Cache) {
	settings := setting.NewCache(app.Settings)
	return app.NewService(h.DB, settings), settings
}

// profile creates a user's customer and consumes its creation event.
func profile(t *testing.T, h *contexttest.Harness, svc *app.Service, userID string) domain.Customer {
	t.Helper()
	if err := svc.CreateProfile(context.Background(), userID, userID+"@example.com", "Name of "+userID); err != nil {
		t.Fatal(err)
	}
	e := contexttest.Next(t, h, topics.CustomerCreated)
	c, err := svc.Get(context.Background(), e.Payload.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCreateProfileIsIdempotent(t *testing.T) {
	for name, deliver := range map[string]func(fn func()){
		"redelivered": func(fn func()) { fn(); fn() },
		"delivered concurrently": func(fn func()) {
			var wg sync.WaitGroup
			for range 5 {
				wg.Go(fn)
			}
			wg.Wait()
		},
	} {
		t.Run(name, func(t *testing.T) {
			contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
				svc, _ := service(h)
				ctx := context.Background()
				deliver(func() {
					if err := svc.CreateProfile(ctx, "u1", "ada@example.com", "Ada"); err != nil {
						t.Error(err)
					}
				})
				cs, err := svc.List(ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				if len(cs) != 1 {
					t.Fatalf("customers = %+v, want exactly one", cs)
				}
				c := cs[0]
				if c.UserID != "u1" || c.Email != "ada@example.com" || c.Name != "Ada" || c.Tier != domain.TierFree || !c.Active ||
					c.CreatedAt.IsZero() || !c.UpdatedAt.Equal(c.CreatedAt) || c.CreatedAt.Location() != time.UTC {
					t.Fatalf("customer = %+v", c)
				}
				e := contexttest.Next(t, h, topics.CustomerCreated)
				want := topics.CustomerCreatedV1{CustomerID: c.ID, UserID: "u1", Email: "ada@example.com", Name: "Ada", Tier: "free"}
				if e.Payload != want || e.AggregateID != c.ID {
					t.Fatalf("event = %+v (aggregate %s), want %+v", e.Payload, e.AggregateID, want)
				}
				contexttest.None(t, h, topics.CustomerCreated)
			}, customer.Module)
		})
	}
}

func TestCreateProfileAppliesCurrentDefaultTier(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		svc, settings := service(h)
		set := func(value string) bool {
			return settings.Apply(topics.SettingUpdatedV1{Context: "customer", Key: app.SettingDefaultTier, Value: json.RawMessage(value)})
		}
		for _, tc := range []struct {
			user, apply string
			applied     bool
			want        domain.Tier
		}{
			{user: "u1", want: domain.TierFree}, // the declared default
			{user: "u2", apply: `"pro"`, applied: true, want: domain.TierPro},
			{user: "u3", apply: `"gold"`, applied: false, want: domain.TierPro}, // invalid: ignored
			{user: "u4", apply: `"enterprise"`, applied: true, want: domain.TierEnterprise},
		} {
			if tc.apply != "" && set(tc.apply) != tc.applied {
				t.Fatalf("Apply(%s) = %v, want %v", tc.apply, !tc.applied, tc.applied)
			}
			if c := profile(t, h, svc, tc.user); c.Tier != tc.want {
				t.Errorf("%s: tier = %q, want %q", tc.user, c.Tier, tc.want)
			}
		}
	}, customer.Module)
}

func TestCreateProfileWithoutUserIsInvalid(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		svc, _ := service(h)
		err := svc.CreateProfile(context.Background(), "", "a@example.com", "A")
		if !errors.As(err, new(domain.ValidationError)) {
			t.Fatalf("CreateProfile without user = %v, want a validation error", err)
		}
		contexttest.None(t, h, topics.CustomerCreated)
	}, customer.Module)
}

func TestSuspendedUserCustomerBecomesInactive(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		svc, _ := service(h)
		ctx := context.Background()
		c := profile(t, h, svc, "u1")

		if err := svc.DeactivateUserCustomer(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		got, err := svc.Get(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Active || !got.UpdatedAt.After(c.UpdatedAt) {
			t.Fatalf("after suspension: %+v, want inactive and updated", got)
		}
		e := contexttest.Next(t, h, topics.CustomerUpdated)
		if want := (topics.CustomerUpdatedV1{CustomerID: c.ID, Name: c.Name, Tier: string(c.Tier), Active: false}); e.Payload != want {
			t.Fatalf("event = %+v, want %+v", e.Payload, want)
		}

		// Redelivered: nothing changes, nothing is published.
		if err := svc.DeactivateUserCustomer(ctx, "u1"); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
		if again, err := svc.Get(ctx, c.ID); err != nil || again != got {
			t.Fatalf("after redelivery: %+v, %v; want %+v", again, err, got)
		}
		contexttest.None(t, h, topics.CustomerUpdated)
	}, customer.Module)
}

func TestSuspensionBeforeRegistrationIsRetried(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		svc, _ := service(h)
		err := svc.DeactivateUserCustomer(context.Background(), "u1")
		if !errors.Is(err, domain.ErrNotFound) || bus.IsPermanent(err) {
			t.Fatalf("DeactivateUserCustomer before the customer exists = %v, want a retryable not-found error", err)
		}
		contexttest.None(t, h, topics.CustomerUpdated)
	}, customer.Module)
}

func TestUpdate(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		svc, _ := service(h)
		ctx := context.Background()
		c := profile(t, h, svc, "u1")

		for name, tc := range map[string]struct{ name, tier *string }{
			"nothing":       {},
			"empty name":    {name: new("")},
			"blank name":    {name: new("   ")},
			"long name":     {name: new(strings.Repeat("x", 201))},
			"unknown tier":  {tier: new("gold")},
			"one bad field": {name: new("Valid"), tier: new("gold")},
		} {
			_, err := svc.Update(ctx, c.ID, tc.name, tc.tier)
			if !errors.As(err, new(domain.ValidationError)) {
				t.Errorf("%s: Update = %v, want a validation error", name, err)
			}
		}
		if got, err := svc.Get(ctx, c.ID); err != nil || got != c {
			t.Fatalf("after rejected updates: %+v, %v; want unchanged %+v", got, err, c)
		}
		contexttest.None(t, h, topics.CustomerUpdated)

		if _, err := svc.Update(ctx, "unknown", new("Ada"), nil); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("Update of an unknown customer = %v, want ErrNotFound", err)
		}

		got, err := svc.Update(ctx, c.ID, new("  Ada Lovelace "), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Ada Lovelace" || got.Tier != c.Tier || !got.Active || !got.UpdatedAt.After(c.UpdatedAt) {
			t.Fatalf("Update(name) = %+v", got)
		}
		got, err = svc.Update(ctx, c.ID, nil, new("enterprise"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Ada Lovelace" || got.Tier != domain.TierEnterprise {
			t.Fatalf("Update(tier) = %+v, want the name kept", got)
		}
		if stored, err := svc.Get(ctx, c.ID); err != nil || stored != got {
			t.Fatalf("stored = %+v, %v; want %+v", stored, err, got)
		}
		// One event per update, compared as a set.
		seen := map[topics.CustomerUpdatedV1]bool{}
		for range 2 {
			seen[contexttest.Next(t, h, topics.CustomerUpdated).Payload] = true
		}
		for _, want := range []topics.CustomerUpdatedV1{
			{CustomerID: c.ID, Name: "Ada Lovelace", Tier: "free", Active: true},
			{CustomerID: c.ID, Name: "Ada Lovelace", Tier: "enterprise", Active: true},
		} {
			if !seen[want] {
				t.Errorf("no event %+v among %v", want, seen)
			}
		}
	}, customer.Module)
}

func TestWinDeal(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		svc, _ := service(h)
		ctx := context.Background()
		active := profile(t, h, svc, "u1")
		inactive := profile(t, h, svc, "u2")
		if err := svc.DeactivateUserCustomer(ctx, "u2"); err != nil {
			t.Fatal(err)
		}
		contexttest.Next(t, h, topics.CustomerUpdated)

		for _, tc := range []struct {
			name       string
			customerID string
			amount     int64
			currency   string
			want       func(error) bool
		}{
			{"zero amount", active.ID, 0, "EUR", isValidation},
			{"bad currency", active.ID, 100, "eur", isValidation},
			{"invalid input before unknown customer", "unknown", 0, "EUR", isValidation},
			{"unknown customer", "unknown", 100, "EUR", is(domain.ErrNotFound)},
			{"inactive customer", inactive.ID, 100, "EUR", is(domain.ErrInactive)},
		} {
			if _, err := svc.WinDeal(ctx, tc.customerID, tc.amount, tc.currency); !tc.want(err) {
				t.Errorf("%s: WinDeal = %v", tc.name, err)
			}
		}
		contexttest.None(t, h, topics.DealWon)
		if n := countDeals(t, h); n != 0 {
			t.Fatalf("%d deals stored by rejected requests", n)
		}

		d, err := svc.WinDeal(ctx, active.ID, 12_345, "EUR")
		if err != nil {
			t.Fatal(err)
		}
		if d.ID == "" || d.CustomerID != active.ID || d.AmountCents != 12_345 || d.Currency != "EUR" || d.WonAt.IsZero() {
			t.Fatalf("deal = %+v", d)
		}
		e := contexttest.Next(t, h, topics.DealWon)
		if want := (topics.DealWonV1{DealID: d.ID, CustomerID: active.ID, AmountCents: 12_345, Currency: "EUR"}); e.Payload != want || e.AggregateID != d.ID {
			t.Fatalf("event = %+v (aggregate %s), want %+v", e.Payload, e.AggregateID, want)
		}
		if n := countDeals(t, h); n != 1 {
			t.Fatalf("%d deals stored, want 1", n)
		}
	}, customer.Module)
}

func TestListNewestFirstCappedAndFiltered(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		svc, _ := service(h)
		ctx := context.Background()
		var ids []string
		for i := range app.ListLimit + 1 {
			if err := svc.CreateProfile(ctx, fmt.Sprintf("u%03d", i), "", ""); err != nil {
				t.Fatal(err)
			}
		}
		all, err := svc.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != app.ListLimit {
			t.Fatalf("List returned %d customers, want the cap %d", len(all), app.ListLimit)
		}
		for _, c := range all {
			ids = append(ids, c.UserID)
		}
		if ids[0] != "u100" || ids[len(ids)-1] != "u001" {
			t.Fatalf("List = %s ... %s, want newest (u100) first and the oldest (u000) left out", ids[0], ids[len(ids)-1])
		}

		for _, tc := range []struct {
			user string
			want int
		}{{"u000", 1}, {"nobody", 0}} {
			cs, err := svc.List(ctx, tc.user)
			if err != nil || len(cs) != tc.want || (tc.want == 1 && cs[0].UserID != tc.user) {
				t.Errorf("List(%s) = %+v, %v; want %d customer(s)", tc.user, cs, err, tc.want)
			}
		}
	}, customer.Module)
}

func isValidation(err error) bool { return errors.As(err, new(domain.ValidationError)) }

func is(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

func countDeals(t *testing.T, h *contexttest.Harness) int {
	t.Helper()
	var n int
	if err := h.DB.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM deals`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
