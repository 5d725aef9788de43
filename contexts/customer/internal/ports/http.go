// Package ports adapts customer's use cases to HTTP and to the event bus.
package ports

import (
	"errors"
	"net/http"
	"time"

	"github.com/example/monolith/contexts/customer/internal/app"
	"github.com/example/monolith/contexts/customer/internal/domain"
	"github.com/example/monolith/platform/httpx"
)

// Routes are customer's HTTP endpoints.
func Routes(s *app.Service) []httpx.Route {
	h := handlers{s}
	return []httpx.Route{
		{Pattern: "GET /api/customers", Handler: httpx.HandlerFunc(h.list)},
		{Pattern: "GET /api/customers/{id}", Handler: httpx.HandlerFunc(h.get)},
		{Pattern: "PATCH /api/customers/{id}", Handler: httpx.HandlerFunc(h.update)},
		{Pattern: "POST /api/customers/{id}/deals", Handler: httpx.HandlerFunc(h.winDeal)},
	}
}

type handlers struct{ s *app.Service }

type customerJSON struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Tier      string    `json:"tier"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// DealsWon trails POST .../deals: customer.count-won-deal counts a deal
	// once its customer.deal.won is handled.
	DealsWon int64 `json:"deals_won"`
}

func toJSON(c domain.Customer) customerJSON {
	return customerJSON{
		ID: c.ID, UserID: c.UserID, Email: c.Email, Name: c.Name, Tier: string(c.Tier),
		Active: c.Active, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, DealsWon: c.DealsWon,
	}
}

type dealJSON struct {
	ID          string    `json:"id"`
	CustomerID  string    `json:"customer_id"`
	AmountCents int64     `json:"amount_cents"`
	Currency    string    `json:"currency"`
	WonAt       time.Time `json:"won_at"`
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) error {
	cs, err := h.s.List(r.Context(), r.URL.Query().Get("user_id"))
	if err != nil {
		return httpError(err)
	}
	out := make([]customerJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, toJSON(c))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"customers": out})
	return nil
}

func (h handlers) get(w http.ResponseWriter, r *http.Request) error {
	c, err := h.s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return httpError(err)
	}
	httpx.WriteJSON(w, http.StatusOK, toJSON(c))
	return nil
}

func (h handlers) update(w http.ResponseWriter, r *http.Request) error {
	// Pointers tell an absent field from an empty one.
	var body struct {
		Name *string `json:"name"`
		Tier *string `json:"tier"`
	}
	if err := httpx.Decode(w, r, &body); err != nil {
		return err
	}
	c, err := h.s.Update(r.Context(), r.PathValue("id"), body.Name, body.Tier)
	if err != nil {
		return httpError(err)
	}
	httpx.WriteJSON(w, http.StatusOK, toJSON(c))
	return nil
}

func (h handlers) winDeal(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		AmountCents int64  `json:"amount_cents"`
		Currency    string `json:"currency"`
	}
	if err := httpx.Decode(w, r, &body); err != nil {
		return err
	}
	d, err := h.s.WinDeal(r.Context(), r.PathValue("id"), body.AmountCents, body.Currency)
	if err != nil {
		return httpError(err)
	}
	httpx.WriteJSON(w, http.StatusCreated, dealJSON{
		ID: d.ID, CustomerID: d.CustomerID, AmountCents: d.AmountCents, Currency: d.Currency, WonAt: d.WonAt,
	})
	return nil
}

func httpError(err error) error {
	var invalid domain.ValidationError
	switch {
	case errors.As(err, &invalid):
		return httpx.Unprocessable("%s", invalid.Error())
	case errors.Is(err, domain.ErrNotFound):
		return httpx.NotFound("customer not found")
	case errors.Is(err, domain.ErrInactive):
		return httpx.Conflict("customer is inactive")
	}
	return err
}
