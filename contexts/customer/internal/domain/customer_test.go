package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseTier(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"free", true}, {"pro", true}, {"enterprise", true},
		{"", false}, {"Pro", false}, {"gold", false},
	} {
		tier, err := ParseTier(tc.in)
		if tc.ok && (err != nil || string(tier) != tc.in) {
			t.Errorf("ParseTier(%q) = %q, %v; want it accepted", tc.in, tier, err)
		}
		var invalid ValidationError
		if !tc.ok && (!errors.As(err, &invalid) || invalid.Field != "tier") {
			t.Errorf("ParseTier(%q) = %v; want a tier validation error", tc.in, err)
		}
	}
}

func TestNewCustomer(t *testing.T) {
	c, err := NewCustomer("c1", "u1", "ada@example.com", "Ada", TierPro, now)
	if err != nil {
		t.Fatal(err)
	}
	want := Customer{ID: "c1", UserID: "u1", Email: "ada@example.com", Name: "Ada", Tier: TierPro, Active: true, CreatedAt: now, UpdatedAt: now}
	if c != want {
		t.Fatalf("NewCustomer = %+v, want %+v", c, want)
	}
	for name, tc := range map[string]struct {
		userID string
		tier   Tier
		field  string
	}{
		"no user id":   {"", TierFree, "user_id"},
		"unknown tier": {"u1", "gold", "tier"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewCustomer("c1", tc.userID, "a@example.com", "A", tc.tier, now)
			var invalid ValidationError
			if !errors.As(err, &invalid) || invalid.Field != tc.field {
				t.Fatalf("NewCustomer = %v, want a validation error on %s", err, tc.field)
			}
		})
	}
}

func TestNewChanges(t *testing.T) {
	for name, tc := range map[string]struct {
		name, tier *string
		wantName   *string
		wantTier   *Tier
		field      string // non-empty: the invalid field
	}{
		"name trimmed":         {name: new("  Ada Lovelace "), wantName: new("Ada Lovelace")},
		"tier":                 {tier: new("enterprise"), wantTier: new(TierEnterprise)},
		"both":                 {name: new("Ada"), tier: new("free"), wantName: new("Ada"), wantTier: new(TierFree)},
		"200 characters":       {name: new(strings.Repeat("é", 200)), wantName: new(strings.Repeat("é", 200))},
		"nothing to change":    {field: "body"},
		"empty name":           {name: new(""), field: "name"},
		"blank name":           {name: new(" \t "), field: "name"},
		"201 characters":       {name: new(strings.Repeat("é", 201)), field: "name"},
		"unknown tier":         {tier: new("gold"), field: "tier"},
		"valid name, bad tier": {name: new("Ada"), tier: new("PRO"), field: "tier"},
		"bad name, valid tier": {name: new(""), tier: new("pro"), field: "name"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := NewChanges(tc.name, tc.tier)
			if tc.field != "" {
				var invalid ValidationError
				if !errors.As(err, &invalid) || invalid.Field != tc.field {
					t.Fatalf("NewChanges = %+v, %v; want a validation error on %s", c, err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equal(c.Name, tc.wantName) || !equal(c.Tier, tc.wantTier) {
				t.Fatalf("NewChanges = {%v %v}, want {%v %v}", deref(c.Name), deref(c.Tier), deref(tc.wantName), deref(tc.wantTier))
			}
		})
	}
}

func TestCanWinDeals(t *testing.T) {
	if err := (Customer{Active: true}).CanWinDeals(); err != nil {
		t.Fatalf("active customer: %v", err)
	}
	if err := (Customer{Active: false}).CanWinDeals(); !errors.Is(err, ErrInactive) {
		t.Fatalf("inactive customer: %v, want ErrInactive", err)
	}
}

func equal[T comparable](a, b *T) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
