// Package ports adapts the settings context's use cases to HTTP.
package ports

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/example/monolith/contexts/settings/internal/app"
	"github.com/example/monolith/contexts/settings/internal/domain"
	"github.com/example/monolith/platform/httpx"
)

// Routes are the settings context's HTTP endpoints.
func Routes(s *app.Service) []httpx.Route {
	h := handlers{s}
	return []httpx.Route{
		{Pattern: "GET /api/settings/{context}", Handler: httpx.HandlerFunc(h.list)},
		{Pattern: "PUT /api/settings/{context}/{key}", Handler: httpx.HandlerFunc(h.update)},
	}
}

type handlers struct{ s *app.Service }

// settingJSON shows values as the JSON they are: true, 42, "pro".
type settingJSON struct {
	Key         string          `json:"key"`
	Type        string          `json:"type"`
	Value       json.RawMessage `json:"value"`
	Default     json.RawMessage `json:"default"`
	Allowed     []string        `json:"allowed,omitempty"`
	Min         *int64          `json:"min,omitempty"`
	Max         *int64          `json:"max,omitempty"`
	Description string          `json:"description"`
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) error {
	contextName := r.PathValue("context")
	settings, err := h.s.List(r.Context(), contextName)
	if err != nil {
		return httpError(err)
	}
	out := make([]settingJSON, len(settings))
	for i, s := range settings {
		out[i] = settingJSON{
			Key: s.Key, Type: s.Type, Value: s.Value, Default: s.Default,
			Allowed: s.Allowed, Min: s.Min, Max: s.Max, Description: s.Description,
		}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"context": contextName, "settings": out})
	return nil
}

func (h handlers) update(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Value json.RawMessage `json:"value"`
	}
	if err := httpx.Decode(w, r, &body); err != nil {
		return err
	}
	// null would otherwise reach validation, which every type's zero value passes.
	if len(body.Value) == 0 || string(body.Value) == "null" {
		return httpx.BadRequest("value is required")
	}
	contextName, key := r.PathValue("context"), r.PathValue("key")
	value, err := h.s.Update(r.Context(), contextName, key, body.Value)
	if err != nil {
		return httpError(err)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"context": contextName, "key": key, "value": value})
	return nil
}

func httpError(err error) error {
	var invalid domain.ValidationError
	switch {
	case errors.As(err, &invalid):
		return httpx.Unprocessable("%s", invalid.Reason)
	case errors.Is(err, domain.ErrContextNotFound):
		return httpx.NotFound("context has declared no settings")
	case errors.Is(err, domain.ErrSettingNotFound):
		return httpx.NotFound("setting not found")
	}
	return err
}
