package outbox

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
)

// HistoryRoutes serve the event history under /api/ops/events, on the admin
// listener: GET /api/ops/events lists it (topic, aggregate, correlation,
// since and limit, as `app events list`), GET /api/ops/events/{id} shows
// one event. GET /api/ops/scheduled lists the scheduled events (limit), and
// DELETE /api/ops/scheduled/{id} cancels one (404 once it is due).
func HistoryRoutes(d *db.DB) []httpx.Route {
	return []httpx.Route{
		{Pattern: "GET /api/ops/scheduled", Handler: httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			for k := range r.URL.Query() {
				if k != "limit" {
					return httpx.BadRequest("unknown query parameter %q; the scheduled events take limit", k)
				}
			}
			limit, err := httpx.Limit(r, 100)
			if err != nil {
				return err
			}
			events, err := ListScheduled(r.Context(), d, limit)
			if err != nil {
				return err
			}
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"scheduled": events})
			return nil
		}), Admin: true},
		{Pattern: "DELETE /api/ops/scheduled/{id}", Handler: httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			ok, err := CancelScheduled(r.Context(), d, r.PathValue("id"))
			if err != nil {
				return err
			}
			if !ok {
				return httpx.NotFound("no scheduled event %s: unknown, cancelled, or due already", r.PathValue("id"))
			}
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"cancelled": r.PathValue("id")})
			return nil
		}), Admin: true},
		{Pattern: "GET /api/ops/events", Handler: httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			f, err := historyFilterOf(r)
			if err != nil {
				return err
			}
			events, err := History(r.Context(), d, f)
			if err != nil {
				return err
			}
			if events == nil {
				events = []HistoryEvent{}
			}
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"events": events})
			return nil
		}), Admin: true},
		{Pattern: "GET /api/ops/events/{id}", Handler: httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			e, err := HistoryEventByID(r.Context(), d, r.PathValue("id"))
			if errors.Is(err, ErrEventNotFound) {
				return httpx.NotFound("no event %s in the history", r.PathValue("id"))
			}
			if err != nil {
				return err
			}
			httpx.WriteJSON(w, http.StatusOK, e)
			return nil
		}), Admin: true},
	}
}

var historyParams = map[string]bool{"topic": true, "aggregate": true, "correlation": true, "since": true, "limit": true}

func historyFilterOf(r *http.Request) (HistoryFilter, error) {
	q := r.URL.Query()
	for k := range q {
		if !historyParams[k] {
			return HistoryFilter{}, httpx.BadRequest("unknown query parameter %q; the history takes topic, aggregate, correlation, since and limit", k)
		}
	}
	f := HistoryFilter{Topic: q.Get("topic"), AggregateID: q.Get("aggregate"), CorrelationID: q.Get("correlation")}
	var err error
	if f.Limit, err = httpx.Limit(r, 100); err != nil {
		return HistoryFilter{}, err
	}
	if v := q.Get("since"); v != "" {
		t, err := ParseSince(v, time.Now())
		if err != nil {
			return HistoryFilter{}, httpx.BadRequest("since: %v", err)
		}
		f.Since = t
	}
	return f, nil
}

// ParseSince reads a time to read the history from: RFC 3339, or a
// duration before now (24h).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a positive duration", s)
	}
	return now.Add(-d), nil
}
