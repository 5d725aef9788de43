package domain

import "time"

// Deal is a won deal; the amount is in minor units of Currency.
type Deal struct {
	ID          string
	CustomerID  string
	AmountCents int64
	Currency    string
	WonAt       time.Time
}

// NewDeal validates a won deal: a positive amount and an ISO 4217 style
// code of three upper-case letters. Whether the customer may win it is
// [Customer.CanWinDeals].
func NewDeal(id, customerID string, amountCents int64, currency string, now time.Time) (Deal, error) {
	if amountCents <= 0 {
		return Deal{}, ValidationError{"amount_cents", "must be greater than 0"}
	}
	if !isCurrencyCode(currency) {
		return Deal{}, ValidationError{"currency", "must be 3 upper-case letters"}
	}
	return Deal{ID: id, CustomerID: customerID, AmountCents: amountCents, Currency: currency, WonAt: now}, nil
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range len(s) {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
