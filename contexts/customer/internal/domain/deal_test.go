package domain

import (
	"errors"
	"testing"
)

func TestNewDeal(t *testing.T) {
	for name, tc := range map[string]struct {
		amount   int64
		currency string
		field    string // non-empty: the invalid field
	}{
		"valid":            {amount: 1, currency: "EUR"},
		"large":            {amount: 1 << 62, currency: "JPY"},
		"zero amount":      {amount: 0, currency: "EUR", field: "amount_cents"},
		"negative amount":  {amount: -5, currency: "EUR", field: "amount_cents"},
		"lower case":       {amount: 1, currency: "eur", field: "currency"},
		"two letters":      {amount: 1, currency: "EU", field: "currency"},
		"four letters":     {amount: 1, currency: "EURO", field: "currency"},
		"digit":            {amount: 1, currency: "E1R", field: "currency"},
		"non-ASCII letter": {amount: 1, currency: "ÉU", field: "currency"},
		"padded":           {amount: 1, currency: " EUR", field: "currency"},
		"empty":            {amount: 1, currency: "", field: "currency"},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := NewDeal("d1", "c1", tc.amount, tc.currency, now)
			if tc.field != "" {
				var invalid ValidationError
				if !errors.As(err, &invalid) || invalid.Field != tc.field {
					t.Fatalf("NewDeal = %+v, %v; want a validation error on %s", d, err, tc.field)
				}
				return
			}
			want := Deal{ID: "d1", CustomerID: "c1", AmountCents: tc.amount, Currency: tc.currency, WonAt: now}
			if err != nil || d != want {
				t.Fatalf("NewDeal = %+v, %v; want %+v", d, err, want)
			}
		})
	}
}
