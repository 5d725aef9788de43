package poison

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/example/monolith/platform/httpx"
)

// Routes serve the poison store under /api/ops/poison, on the admin
// listener.
func Routes(s *Store) []httpx.Route {
	h := handlers{s}
	return []httpx.Route{
		{Pattern: "GET /api/ops/poison", Handler: httpx.HandlerFunc(h.list), Admin: true},
		{Pattern: "GET /api/ops/poison/{id}", Handler: httpx.HandlerFunc(h.show), Admin: true},
		{Pattern: "GET /api/ops/poison/audit", Handler: httpx.HandlerFunc(h.audit), Admin: true},
		{Pattern: "POST /api/ops/poison/{id}/replay", Handler: httpx.HandlerFunc(h.replay), Admin: true},
		{Pattern: "POST /api/ops/poison/replay", Handler: httpx.HandlerFunc(h.replayAll), Admin: true},
		{Pattern: "DELETE /api/ops/poison/{id}", Handler: httpx.HandlerFunc(h.purge), Admin: true},
		{Pattern: "DELETE /api/ops/poison", Handler: httpx.HandlerFunc(h.purgeAll), Admin: true},
	}
}

type handlers struct{ s *Store }

// actor is who made r: the admin token's id, or "local".
func actor(r *http.Request) Actor { return Actor{Who: httpx.Operator(r.Context()), Via: ViaHTTP} }

func filterOf(r *http.Request) (Filter, error) {
	f := Filter{Topic: r.URL.Query().Get("topic"), Handler: r.URL.Query().Get("handler")}
	var err error
	if f.Limit, err = httpx.Limit(r, 0); err != nil {
		return Filter{}, err
	}
	if v := r.URL.Query().Get("all"); v != "" {
		if f.All, err = strconv.ParseBool(v); err != nil {
			return Filter{}, httpx.BadRequest("all must be true or false")
		}
	}
	return f, nil
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) error {
	f, err := filterOf(r)
	if err != nil {
		return err
	}
	msgs, err := h.s.List(r.Context(), f)
	if err != nil {
		return err
	}
	total, err := h.s.Count(r.Context(), f)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"messages": msgs, "total": total})
	return nil
}

func (h handlers) show(w http.ResponseWriter, r *http.Request) error {
	m, err := h.s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return notFound(err)
	}
	httpx.WriteJSON(w, http.StatusOK, m)
	return nil
}

func (h handlers) replay(w http.ResponseWriter, r *http.Request) error {
	if err := h.s.Replay(r.Context(), actor(r), r.PathValue("id")); err != nil {
		return notFound(err)
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"replayed": 1})
	return nil
}

func (h handlers) replayAll(w http.ResponseWriter, r *http.Request) error {
	f, err := filterOf(r)
	if err != nil {
		return err
	}
	n, err := h.s.ReplayAll(r.Context(), actor(r), f)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"replayed": n})
	return nil
}

func (h handlers) purge(w http.ResponseWriter, r *http.Request) error {
	if err := h.s.Purge(r.Context(), actor(r), r.PathValue("id")); err != nil {
		return notFound(err)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"purged": 1})
	return nil
}

func (h handlers) purgeAll(w http.ResponseWriter, r *http.Request) error {
	f, err := filterOf(r)
	if err != nil {
		return err
	}
	n, err := h.s.PurgeAll(r.Context(), actor(r), f)
	if errors.Is(err, ErrUnfiltered) {
		return httpx.BadRequest("purging every poisoned message needs all=true; add topic= or handler= to purge some")
	}
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"purged": n})
	return nil
}

func (h handlers) audit(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpx.Limit(r, 0)
	if err != nil {
		return err
	}
	entries, err := h.s.Audit(r.Context(), limit)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"entries": entries})
	return nil
}

func notFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return httpx.NotFound("no poisoned message with that id")
	}
	return err
}
