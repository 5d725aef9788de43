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

	"github.com/example/monolith/contexts/customer/internal/app"
	"github.com/example/monolith/contexts/customer/internal/domain"
	"github.com/example/monolith/contexts/customer/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox/outboxtest"
	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

// harness is the service on a migrated database and a running in-process
// bus, with what it publishes into the outbox forwarded to the bus by the
// relay and recorded.
type harness struct {
	svc      *app.Service
	d        *db.DB
	settings *setting.Cache
	created  chan bus.Event[topics.CustomerCreatedV1]
	updated  chan bus.Event[topics.CustomerUpdatedV1]
	won      chan bus.Event[topics.DealWonV1]
}

func newHarness(t *testing.T, d *db.DB) *harness {
	t.Helper()
	ctx := context.Background()
	b, err := bus.New(ctx, bus.DefaultConfig(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		d:        d,
		settings: setting.NewCache(app.Settings),
		created:  record(t, b, topics.CustomerCreated),
		updated:  record(t, b, topics.CustomerUpdated),
		won:      record(t, b, topics.DealWon),
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	outboxtest.Relay(t, d, b) // before the first publish: it creates the outbox tables
	h.svc = app.NewService(d, h.settings)
	return h
}

// record registers a handler that hands every event of topic to the test.
func record[T any](t *testing.T, b *bus.Bus, topic bus.Topic[T]) chan bus.Event[T] {
	t.Helper()
	ch := make(chan bus.Event[T], 256)
	name := "test.record-" + strings.ReplaceAll(topic.Name(), ".", "-")
	if err := b.Register(bus.NewHandler(name, topic, func(_ context.Context, e bus.Event[T]) error {
		ch <- e
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	return ch
}

// next waits for the next recorded event.
func next[T any](t *testing.T, ch chan bus.Event[T]) bus.Event[T] {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(5 * time.Second):
		var zero T
		t.Fatalf("no %T event published", zero)
		return bus.Event[T]{}
	}
}

// none fails if an event is recorded within a short while: the relay polls
// the outbox and gochannel delivers asynchronously, so absence can only be
// observed over time (several relay poll intervals here).
func none[T any](t *testing.T, ch chan bus.Event[T]) {
	t.Helper()
	select {
	case e := <-ch:
		t.Fatalf("unexpected event published: %+v", e.Payload)
	case <-time.After(500 * time.Millisecond):
	}
}

// profile creates a user's customer and consumes its creation event.
func (h *harness) profile(t *testing.T, userID string) domain.Customer {
	t.Helper()
	if err := h.svc.CreateProfile(context.Background(), userID, userID+"@example.com", "Name of "+userID); err != nil {
		t.Fatal(err)
	}
	e := next(t, h.created)
	c, err := h.svc.Get(context.Background(), e.Payload.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func each(t *testing.T, fn func(t *testing.T, h *harness)) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) { fn(t, newHarness(t, d)) })
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
			each(t, func(t *testing.T, h *harness) {
				ctx := context.Background()
				deliver(func() {
					if err := h.svc.CreateProfile(ctx, "u1", "ada@example.com", "Ada"); err != nil {
						t.Error(err)
					}
				})
				cs, err := h.svc.List(ctx, "")
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
				e := next(t, h.created)
				want := topics.CustomerCreatedV1{CustomerID: c.ID, UserID: "u1", Email: "ada@example.com", Name: "Ada", Tier: "free"}
				if e.Payload != want || e.AggregateID != c.ID {
					t.Fatalf("event = %+v (aggregate %s), want %+v", e.Payload, e.AggregateID, want)
				}
				none(t, h.created)
			})
		})
	}
}

func TestCreateProfileAppliesCurrentDefaultTier(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		set := func(value string) bool {
			return h.settings.Apply(topics.SettingUpdatedV1{Context: "customer", Key: app.SettingDefaultTier, Value: json.RawMessage(value)})
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
			if c := h.profile(t, tc.user); c.Tier != tc.want {
				t.Errorf("%s: tier = %q, want %q", tc.user, c.Tier, tc.want)
			}
		}
	})
}

func TestCreateProfileWithoutUserIsInvalid(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		err := h.svc.CreateProfile(context.Background(), "", "a@example.com", "A")
		if !errors.As(err, new(domain.ValidationError)) {
			t.Fatalf("CreateProfile without user = %v, want a validation error", err)
		}
		none(t, h.created)
	})
}

func TestSuspendedUserCustomerBecomesInactive(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		c := h.profile(t, "u1")

		if err := h.svc.DeactivateUserCustomer(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		got, err := h.svc.Get(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Active || !got.UpdatedAt.After(c.UpdatedAt) {
			t.Fatalf("after suspension: %+v, want inactive and updated", got)
		}
		e := next(t, h.updated)
		if want := (topics.CustomerUpdatedV1{CustomerID: c.ID, Name: c.Name, Tier: string(c.Tier), Active: false}); e.Payload != want {
			t.Fatalf("event = %+v, want %+v", e.Payload, want)
		}

		// Redelivered: nothing changes, nothing is published.
		if err := h.svc.DeactivateUserCustomer(ctx, "u1"); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
		if again, err := h.svc.Get(ctx, c.ID); err != nil || again != got {
			t.Fatalf("after redelivery: %+v, %v; want %+v", again, err, got)
		}
		none(t, h.updated)
	})
}

func TestSuspensionBeforeRegistrationIsRetried(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		err := h.svc.DeactivateUserCustomer(context.Background(), "u1")
		if !errors.Is(err, domain.ErrNotFound) || bus.IsPermanent(err) {
			t.Fatalf("DeactivateUserCustomer before the customer exists = %v, want a retryable not-found error", err)
		}
		none(t, h.updated)
	})
}

func TestUpdate(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		c := h.profile(t, "u1")

		for name, tc := range map[string]struct{ name, tier *string }{
			"nothing":       {},
			"empty name":    {name: new("")},
			"blank name":    {name: new("   ")},
			"long name":     {name: new(strings.Repeat("x", 201))},
			"unknown tier":  {tier: new("gold")},
			"one bad field": {name: new("Valid"), tier: new("gold")},
		} {
			_, err := h.svc.Update(ctx, c.ID, tc.name, tc.tier)
			if !errors.As(err, new(domain.ValidationError)) {
				t.Errorf("%s: Update = %v, want a validation error", name, err)
			}
		}
		if got, err := h.svc.Get(ctx, c.ID); err != nil || got != c {
			t.Fatalf("after rejected updates: %+v, %v; want unchanged %+v", got, err, c)
		}
		none(t, h.updated)

		if _, err := h.svc.Update(ctx, "unknown", new("Ada"), nil); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("Update of an unknown customer = %v, want ErrNotFound", err)
		}

		got, err := h.svc.Update(ctx, c.ID, new("  Ada Lovelace "), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Ada Lovelace" || got.Tier != c.Tier || !got.Active || !got.UpdatedAt.After(c.UpdatedAt) {
			t.Fatalf("Update(name) = %+v", got)
		}
		got, err = h.svc.Update(ctx, c.ID, nil, new("enterprise"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Ada Lovelace" || got.Tier != domain.TierEnterprise {
			t.Fatalf("Update(tier) = %+v, want the name kept", got)
		}
		if stored, err := h.svc.Get(ctx, c.ID); err != nil || stored != got {
			t.Fatalf("stored = %+v, %v; want %+v", stored, err, got)
		}
		// gochannel does not keep publish order: compare as a set.
		seen := map[topics.CustomerUpdatedV1]bool{next(t, h.updated).Payload: true, next(t, h.updated).Payload: true}
		for _, want := range []topics.CustomerUpdatedV1{
			{CustomerID: c.ID, Name: "Ada Lovelace", Tier: "free", Active: true},
			{CustomerID: c.ID, Name: "Ada Lovelace", Tier: "enterprise", Active: true},
		} {
			if !seen[want] {
				t.Errorf("no event %+v among %v", want, seen)
			}
		}
	})
}

func TestWinDeal(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		active := h.profile(t, "u1")
		inactive := h.profile(t, "u2")
		if err := h.svc.DeactivateUserCustomer(ctx, "u2"); err != nil {
			t.Fatal(err)
		}
		next(t, h.updated)

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
			if _, err := h.svc.WinDeal(ctx, tc.customerID, tc.amount, tc.currency); !tc.want(err) {
				t.Errorf("%s: WinDeal = %v", tc.name, err)
			}
		}
		none(t, h.won)
		if n := countDeals(t, h.d); n != 0 {
			t.Fatalf("%d deals stored by rejected requests", n)
		}

		d, err := h.svc.WinDeal(ctx, active.ID, 12_345, "EUR")
		if err != nil {
			t.Fatal(err)
		}
		if d.ID == "" || d.CustomerID != active.ID || d.AmountCents != 12_345 || d.Currency != "EUR" || d.WonAt.IsZero() {
			t.Fatalf("deal = %+v", d)
		}
		e := next(t, h.won)
		if want := (topics.DealWonV1{DealID: d.ID, CustomerID: active.ID, AmountCents: 12_345, Currency: "EUR"}); e.Payload != want || e.AggregateID != d.ID {
			t.Fatalf("event = %+v (aggregate %s), want %+v", e.Payload, e.AggregateID, want)
		}
		if n := countDeals(t, h.d); n != 1 {
			t.Fatalf("%d deals stored, want 1", n)
		}
	})
}

func TestListNewestFirstCappedAndFiltered(t *testing.T) {
	each(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		var ids []string
		for i := range app.ListLimit + 1 {
			if err := h.svc.CreateProfile(ctx, fmt.Sprintf("u%03d", i), "", ""); err != nil {
				t.Fatal(err)
			}
		}
		all, err := h.svc.List(ctx, "")
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
			cs, err := h.svc.List(ctx, tc.user)
			if err != nil || len(cs) != tc.want || (tc.want == 1 && cs[0].UserID != tc.user) {
				t.Errorf("List(%s) = %+v, %v; want %d customer(s)", tc.user, cs, err, tc.want)
			}
		}
	})
}

func isValidation(err error) bool { return errors.As(err, new(domain.ValidationError)) }

func is(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

func countDeals(t *testing.T, d *db.DB) int {
	t.Helper()
	var n int
	if err := d.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM deals`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
