package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
)

// MaxBodyBytes caps request bodies.
const MaxBodyBytes = 1 << 20

// HandlerFunc is an http.HandlerFunc that returns its error, which is written
// as a JSON error response (and logged when it is a 500).
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		e := asError(err)
		if e.Status >= 500 {
			slog.ErrorContext(r.Context(), "Request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		}
		WriteJSON(w, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
	}
}

// Decode reads a JSON body into dst: 413 over MaxBodyBytes, 400 when it is
// malformed, has unknown fields or trailing data.
func Decode(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds %d bytes", MaxBodyBytes)
		case errors.Is(err, io.EOF):
			return BadRequest("request body is empty")
		default:
			return BadRequest("malformed JSON body: %v", err)
		}
	}
	if dec.More() {
		return BadRequest("malformed JSON body: trailing data")
	}
	return nil
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// MaxLimit is the most items a list endpoint returns per request.
const MaxLimit = 1000

// Limit is the request's limit query parameter, or def when it is absent;
// a 400 error when it is not an integer from 1 to MaxLimit.
func Limit(r *http.Request, def int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, BadRequest("limit must be an integer from 1 to %d", MaxLimit)
	}
	return n, nil
}
