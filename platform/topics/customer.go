package topics

import "github.com/example/monolith/platform/bus"

// CustomerCreated is published by customer when a user's profile is created.
var CustomerCreated = bus.NewTopic[CustomerCreatedV1]("customer.customer.created", 1)

// CustomerCreatedV1 describes the new customer.
type CustomerCreatedV1 struct {
	CustomerID string `json:"customer_id"`
	UserID     string `json:"user_id"`
	Email      string `json:"email"`
	Name       string `json:"name"`
	Tier       string `json:"tier"`
}

// CustomerUpdated is published by customer when a customer's details change.
var CustomerUpdated = bus.NewTopic[CustomerUpdatedV1]("customer.customer.updated", 1)

// CustomerUpdatedV1 carries the customer's details after the change.
type CustomerUpdatedV1 struct {
	CustomerID string `json:"customer_id"`
	Name       string `json:"name"`
	Tier       string `json:"tier"`
	Active     bool   `json:"active"`
}

// DealWon is published by customer when a won deal is recorded.
var DealWon = bus.NewTopic[DealWonV1]("customer.deal.won", 1)

// DealWonV1 describes the deal; the amount is in minor units of Currency.
type DealWonV1 struct {
	DealID      string `json:"deal_id"`
	CustomerID  string `json:"customer_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}
