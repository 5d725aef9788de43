// Package domain holds customer's rules, free of storage and transport.
package domain

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// Tier is a customer's commercial level.
type Tier string

// Tiers, cheapest first.
const (
	TierFree       Tier = "free"
	TierPro        Tier = "pro"
	TierEnterprise Tier = "enterprise"
)

// Errors the use cases return.
var (
	ErrNotFound = errors.New("customer not found")
	ErrInactive = errors.New("customer is inactive")
)

// ValidationError is input that breaks a rule.
type ValidationError struct{ Field, Reason string }

// Error names the field and the rule it breaks.
func (e ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Customer is the customer aggregate: the commercial side of one user.
type Customer struct {
	ID        string
	UserID    string
	Email     string
	Name      string
	Tier      Tier
	Active    bool
	CreatedAt time.Time
	UpdatedAt time.Time
	// DealsWon counts the customer.deal.won events handled for the customer.
	DealsWon int64
}

// ParseTier accepts only the known tiers.
func ParseTier(s string) (Tier, error) {
	switch t := Tier(s); t {
	case TierFree, TierPro, TierEnterprise:
		return t, nil
	}
	return "", ValidationError{"tier", "must be one of free, pro, enterprise"}
}

// NewCustomer is the active customer of a newly registered user. Email and
// name are taken as identity validated them.
func NewCustomer(id, userID, email, name string, tier Tier, now time.Time) (Customer, error) {
	if userID == "" {
		return Customer{}, ValidationError{"user_id", "required"}
	}
	if _, err := ParseTier(string(tier)); err != nil {
		return Customer{}, err
	}
	return Customer{
		ID: id, UserID: userID, Email: email, Name: name, Tier: tier,
		Active: true, CreatedAt: now, UpdatedAt: now,
	}, nil
}

// Changes is a validated update of a customer's details; a nil field is
// left as it is.
type Changes struct {
	Name *string
	Tier *Tier
}

// NewChanges validates an update: at least one field, a name of 1 to 200
// characters once trimmed, a known tier.
func NewChanges(name, tier *string) (Changes, error) {
	if name == nil && tier == nil {
		return Changes{}, ValidationError{"body", "must change name or tier"}
	}
	var c Changes
	if name != nil {
		n := strings.TrimSpace(*name)
		if n == "" || utf8.RuneCountInString(n) > 200 {
			return Changes{}, ValidationError{"name", "must be 1 to 200 characters"}
		}
		c.Name = &n
	}
	if tier != nil {
		t, err := ParseTier(*tier)
		if err != nil {
			return Changes{}, err
		}
		c.Tier = &t
	}
	return c, nil
}

// CanWinDeals reports why the customer may not win deals, or nil: a
// deactivated customer's user is suspended.
func (c Customer) CanWinDeals() error {
	if !c.Active {
		return ErrInactive
	}
	return nil
}
