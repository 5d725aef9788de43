// Package ports adapts identity's use cases to HTTP.
package ports

import (
	"errors"
	"net/http"
	"time"

	"github.com/example/monolith/contexts/identity/internal/app"
	"github.com/example/monolith/contexts/identity/internal/domain"
	"github.com/example/monolith/platform/httpx"
)

// Routes are identity's HTTP endpoints.
func Routes(s *app.Service) []httpx.Route {
	h := handlers{s}
	return []httpx.Route{
		{Pattern: "POST /api/identity/users", Handler: httpx.HandlerFunc(h.register)},
		{Pattern: "GET /api/identity/users/{id}", Handler: httpx.HandlerFunc(h.get)},
		{Pattern: "POST /api/identity/users/{id}/activate", Handler: httpx.HandlerFunc(h.activate)},
		{Pattern: "POST /api/identity/users/{id}/suspend", Handler: httpx.HandlerFunc(h.suspend)},
	}
}

type handlers struct{ s *app.Service }

// userJSON never includes the password hash.
type userJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toJSON(u domain.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Status: string(u.Status), CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func (h handlers) register(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Email    string `json:"email"`
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := httpx.Decode(w, r, &body); err != nil {
		return err
	}
	u, err := h.s.Register(r.Context(), body.Email, body.Name, body.Password)
	if err != nil {
		return httpError(err)
	}
	httpx.WriteJSON(w, http.StatusCreated, toJSON(u))
	return nil
}

func (h handlers) get(w http.ResponseWriter, r *http.Request) error {
	u, err := h.s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return httpError(err)
	}
	httpx.WriteJSON(w, http.StatusOK, toJSON(u))
	return nil
}

func (h handlers) activate(w http.ResponseWriter, r *http.Request) error {
	u, err := h.s.Activate(r.Context(), r.PathValue("id"))
	if err != nil {
		return httpError(err)
	}
	httpx.WriteJSON(w, http.StatusOK, toJSON(u))
	return nil
}

func (h handlers) suspend(w http.ResponseWriter, r *http.Request) error {
	u, err := h.s.Suspend(r.Context(), r.PathValue("id"))
	if err != nil {
		return httpError(err)
	}
	httpx.WriteJSON(w, http.StatusOK, toJSON(u))
	return nil
}

func httpError(err error) error {
	var invalid domain.ValidationError
	switch {
	case errors.As(err, &invalid):
		return httpx.Unprocessable("%s", invalid.Error())
	case errors.Is(err, domain.ErrNotFound):
		return httpx.NotFound("user not found")
	case errors.Is(err, domain.ErrEmailTaken):
		return httpx.Conflict("email already registered")
	case errors.Is(err, domain.ErrTransition):
		return httpx.Conflict("%s", err.Error())
	case errors.Is(err, domain.ErrRegistrationClosed):
		return httpx.Forbidden("registration is closed")
	}
	return err
}
