// Package httpx is the HTTP side of the shared kernel: contexts contribute
// routes, the server adds JSON errors, body limits, correlation ids, panic
// recovery, health and readiness endpoints on the public listener, and
// serves the operators' routes and metrics on an admin listener of their
// own, behind a bearer token when one is configured.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/telemetry"
)

// Config is the http section of the configuration file.
type Config struct {
	// Addr is the listen address, e.g. ":8080".
	Addr string `yaml:"addr"`
	// ShutdownTimeout bounds how long in-flight requests may finish on stop.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// DefaultConfig listens on :8080.
func DefaultConfig() Config { return Config{Addr: ":8080", ShutdownTimeout: 15 * time.Second} }

// Validate reports invalid keys by their path in the file.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr: %w", err))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("http.shutdown_timeout: must be > 0, got %s", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// Route is one endpoint a context serves, with a net/http pattern such as
// "POST /api/identity/users".
type Route struct {
	Pattern string
	Handler http.Handler
	// Admin routes are served on the admin listener (admin.addr), behind
	// admin.token when one is set, instead of the public one (http.addr).
	Admin bool
	// Anonymous admin routes are served without admin.token: for files
	// that hold no data (the console's page) and for endpoints that check
	// a credential of their own (the console's event stream, which a
	// browser cannot send a header to).
	Anonymous bool
	// Package is the import path of the constructor [AsRoutes] got the
	// route from: it tells which context serves the route.
	Package string
}

type shutdownKey struct{}

// WithShutdown returns ctx carrying stopping, which the server closes when
// it starts shutting down; servers give it to every request they serve.
func WithShutdown(ctx context.Context, stopping <-chan struct{}) context.Context {
	return context.WithValue(ctx, shutdownKey{}, stopping)
}

// ShuttingDown is closed when the server serving the request ctx belongs
// to starts shutting down (nil, never closed, when the server does not
// say). A graceful shutdown waits for every response to end, so a response
// that never ends by itself, such as a stream of server-sent events, ends
// when it is closed.
func ShuttingDown(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(shutdownKey{}).(<-chan struct{})
	return ch
}

// Check is one dependency the readiness probe asks.
type Check struct {
	Name  string
	Check func(context.Context) error
}

// NewHandler builds the public listener's handler: the routes not marked
// Admin, /healthz and /readyz, wrapped in recovery and correlation
// middleware.
func NewHandler(routes []Route, checks []Check, logger *slog.Logger) (http.Handler, error) {
	mux := http.NewServeMux()
	if err := registerAll(mux, routes, false); err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		failing := map[string]string{}
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				failing[c.Name] = err.Error()
			}
		}
		if len(failing) > 0 {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failing": failing})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return recoverer(logger, correlate(unmatchedAsJSON(mux))), nil
}

// registerAll registers the routes whose Admin flag is admin.
func registerAll(mux *http.ServeMux, routes []Route, admin bool) error {
	for _, r := range routes {
		if r.Admin != admin {
			continue
		}
		if err := register(mux, r.Pattern, r.Handler); err != nil {
			return err
		}
	}
	return nil
}

// unmatchedAsJSON answers requests no route matches with JSON errors (the
// mux's own are plain text): 405 with Allow when the path exists under other
// methods, 404 otherwise.
func unmatchedAsJSON(mux *http.ServeMux) http.Handler {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			nameSpan(r, pattern)
			mux.ServeHTTP(w, r)
			return
		}
		var allowed []string
		for _, m := range methods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" {
				allowed = append(allowed, m)
			}
		}
		HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			if len(allowed) > 0 {
				w.Header().Set("Allow", strings.Join(allowed, ", "))
				return Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed here; use %s", r.Method, strings.Join(allowed, ", "))
			}
			return NotFound("no such endpoint")
		}).ServeHTTP(w, r)
	})
}

// register turns the mux's panic on a duplicate or malformed pattern into an error.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("http route %q: %v", pattern, r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// correlate gives each request a correlation id (X-Correlation-ID when the
// caller sends one), echoes it, and hands it to events published while
// serving the request.
func correlate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Correlation-ID")
		if id == "" || len(id) > 128 {
			id = uuid.NewString()
		}
		w.Header().Set("X-Correlation-ID", id)
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.SetAttributes(telemetry.CorrelationIDKey.String(id))
		}
		next.ServeHTTP(w, r.WithContext(bus.WithCorrelationID(r.Context(), id)))
	})
}

// nameSpan names the request's server span, if it records, after the route
// pattern it matched ("POST /api/identity/users") and sets http.route, as
// otelhttp does by itself only when the request it passed on is the one
// the mux matched; the middleware between them passes copies.
func nameSpan(r *http.Request, pattern string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	method, route, ok := strings.Cut(pattern, " ")
	if !ok {
		method, route = r.Method, pattern
	}
	span.SetName(method + " " + route)
	span.SetAttributes(semconv.HTTPRoute(route))
}

func recoverer(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil && p != http.ErrAbortHandler { //nolint:errorlint // a panic value, not a wrapped error: net/http compares it the same way
				logger.ErrorContext(r.Context(), "Panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				WriteJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]string{"code": "internal", "message": "internal error"}})
			}
		}()
		next.ServeHTTP(w, r)
	})
}
