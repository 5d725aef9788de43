package httpx

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminConfig is the admin section of the configuration file: the listener
// of the operators' routes (the ops API) and /metrics.
type AdminConfig struct {
	// Addr is the admin listen address. Without a Token it must be a
	// loopback address.
	Addr string `yaml:"addr"`
	// Token, when set, is the bearer token every admin request must carry
	// (Authorization: Bearer <token>). Set it from the environment
	// (APP_ADMIN_TOKEN), not in a file.
	Token string `yaml:"token"`
	// TraceURL, when set, links the console's trace ids to a tracing UI:
	// an http(s) URL in which {trace_id} stands for the trace id, such as
	// http://localhost:16686/trace/{trace_id}.
	TraceURL string `yaml:"trace_url"`
}

// DefaultAdminConfig listens on 127.0.0.1:9090 without a token: reachable
// from this machine only.
func DefaultAdminConfig() AdminConfig { return AdminConfig{Addr: "127.0.0.1:9090"} }

// TraceIDPlaceholder stands for the trace id in admin.trace_url.
const TraceIDPlaceholder = "{trace_id}"

// MinTokenLength is the shortest admin.token accepted.
const MinTokenLength = 16

// LocalOperator is who an admin request comes from when no token is
// configured: someone on this machine.
const LocalOperator = "local"

// Validate reports invalid keys by their path in the file. An admin
// listener beyond loopback without a token is refused: anyone reaching it
// could replay and purge poisoned messages.
func (c AdminConfig) Validate() error {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("admin.addr: %w", err)
	}
	var errs []error
	if c.Token == "" && !IsLoopback(host) {
		errs = append(errs, fmt.Errorf("admin.addr: %q is not a loopback address and admin.token is empty: "+
			"the ops API and /metrics would be open to anyone who reaches it; set admin.token (APP_ADMIN_TOKEN) "+
			"or listen on a loopback address such as 127.0.0.1:9090", c.Addr))
	}
	if c.Token != "" && len(c.Token) < MinTokenLength {
		errs = append(errs, fmt.Errorf("admin.token: must be at least %d characters, got %d", MinTokenLength, len(c.Token)))
	}
	if strings.TrimSpace(c.Token) != c.Token {
		errs = append(errs, errors.New("admin.token: has leading or trailing white space"))
	}
	if c.TraceURL != "" {
		u, err := url.Parse(strings.ReplaceAll(c.TraceURL, TraceIDPlaceholder, "0"))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("admin.trace_url: %w", err))
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			errs = append(errs, fmt.Errorf("admin.trace_url: %q is not an absolute http or https URL", c.TraceURL))
		case !strings.Contains(c.TraceURL, TraceIDPlaceholder):
			errs = append(errs, fmt.Errorf("admin.trace_url: %q does not contain %s, which stands for the trace id", c.TraceURL, TraceIDPlaceholder))
		}
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host, the host part of a listen address, is
// localhost or a loopback IP; an empty host listens on every interface.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// TokenID is a short, non-reversible id of token, for audit records: the
// first 8 hex digits of its SHA-256.
func TokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}

type operatorKey struct{}

// Operator is who made the admin request ctx belongs to: the [TokenID] of
// the token it presented, or [LocalOperator] when the admin listener needs
// no token. Outside an admin request it is LocalOperator too.
func Operator(ctx context.Context) string {
	if id, ok := ctx.Value(operatorKey{}).(string); ok {
		return id
	}
	return LocalOperator
}

// NewAdminHandler builds the admin listener's handler: the routes marked
// Admin and, with a gatherer, /metrics. With a token, every request without
// "Authorization: Bearer <token>" is answered 401, whatever its path.
func NewAdminHandler(routes []Route, gatherer prometheus.Gatherer, token string, logger *slog.Logger) (http.Handler, error) {
	mux := http.NewServeMux()
	if err := registerAll(mux, routes, true); err != nil {
		return nil, err
	}
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	anonymous := map[string]bool{}
	for _, r := range routes {
		if r.Admin && r.Anonymous {
			anonymous[r.Pattern] = true
		}
	}
	return recoverer(logger, correlate(authenticate(token, mux, anonymous, unmatchedAsJSON(mux)))), nil
}

// authenticate lets through requests that carry token as a bearer token,
// recording who made them, and those mux routes to an anonymous pattern;
// with no token, every request, as LocalOperator.
func authenticate(token string, mux *http.ServeMux, anonymous map[string]bool, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	// Hashes have one length whatever the input, so the comparison takes
	// the same time for every wrong token, long or short.
	want := sha256.Sum256([]byte(token))
	id := TokenID(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(anonymous) > 0 {
			if _, pattern := mux.Handler(r); anonymous[pattern] {
				next.ServeHTTP(w, r)
				return
			}
		}
		given, ok := bearer(r)
		got := sha256.Sum256([]byte(given))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="admin"`)
			HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				if !ok {
					return Unauthorized("the admin API needs the header Authorization: Bearer <admin.token>")
				}
				return Unauthorized("wrong admin token")
			}).ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), operatorKey{}, id)))
	})
}

// bearer is the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
