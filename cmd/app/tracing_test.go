package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/example/monolith/internal/apptest"
	"github.com/example/monolith/platform/app"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/testenv"
)

// TestRegistrationIsOneTrace registers a user over HTTP on the binary's
// wiring, on every adapter, and checks that the whole flow is one trace,
// each span the child of the one before: the request, its transaction, the
// outbox insert, the relay's forward, the broker publish, the handler
// attempt that creates the customer, its transaction, and so on to the
// publish of customer.customer.created.
func TestRegistrationIsOneTrace(t *testing.T) {
	for _, tc := range []struct {
		adapter string
		env     func(t *testing.T) (config string, env []string)
	}{
		{"gochannel", func(t *testing.T) (string, []string) {
			return "configs/app.yaml", []string{"APP_DATABASE_DSN=" + filepath.Join(t.TempDir(), "app.db")}
		}},
		{"amqp", func(t *testing.T) (string, []string) {
			b := apptest.AMQP(t)
			return b.Config, append(b.Env, "APP_DATABASE_DSN="+dbtest.Config(t, db.DriverPostgres).DSN)
		}},
		{"redisstream", func(t *testing.T) (string, []string) {
			b := apptest.Redis(t)
			return b.Config, append(b.Env, "APP_DATABASE_DSN="+dbtest.Config(t, db.DriverPostgres).DSN)
		}},
	} {
		t.Run(tc.adapter, func(t *testing.T) {
			config, env := tc.env(t)
			spans := registerTraced(t, config, env)

			request := only(t, spans, "POST /api/identity/users", nil)
			if request.SpanKind() != trace.SpanKindServer {
				t.Errorf("request span kind %s", request.SpanKind())
			}
			parent := request
			for _, name := range chain {
				parent = only(t, spans, name, parent)
			}
			for _, s := range spans {
				if s.SpanContext().TraceID() != request.SpanContext().TraceID() {
					t.Errorf("span %q is in trace %s, not the request's %s", s.Name(), s.SpanContext().TraceID(), request.SpanContext().TraceID())
				}
			}
			handle := only(t, spans, "handle customer.create-profile", nil)
			publish := only(t, spans, "publish identity.user.registered", nil)
			system := map[string]string{"gochannel": "gochannel", "amqp": "rabbitmq", "redisstream": "redis"}[tc.adapter]
			for _, s := range []sdktrace.ReadOnlySpan{handle, publish} {
				checkAttr(t, s, "messaging.system", system)
				checkAttr(t, s, "messaging.destination.name", "identity.user.registered")
				checkAttr(t, s, "app.event_id", attr(s, "messaging.message.id"))
				checkAttr(t, s, "app.correlation_id", attr(request, "app.correlation_id"))
			}
			checkAttr(t, handle, "app.handler", "customer.create-profile")
			checkAttr(t, handle, "messaging.operation.type", "process")
			checkAttr(t, publish, "messaging.operation.type", "send")
			t.Logf("the spans of one registration on %s:\n%s", tc.adapter, tree(spans, request, ""))
		})
	}
}

// chain is the flow of one registration after the request: each span is
// the child of the one before it.
var chain = []string{
	"transaction",
	"outbox insert identity.user.registered",
	"outbox forward identity.user.registered",
	"publish identity.user.registered",
	"handle customer.create-profile",
	"transaction",
	"outbox insert customer.customer.created",
	"outbox forward customer.customer.created",
	"publish customer.customer.created",
}

// registerTraced runs the binary's application on the config file with
// env, registers one user over HTTP and returns the spans of the request's
// trace once every span of the chain ended.
func registerTraced(t *testing.T, config string, env []string) []sdktrace.ReadOnlySpan {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := app.LoadConfig(filepath.Join("..", "..", config))
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	logger := slog.New(slog.NewTextHandler(testenv.Output(t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	var handlers app.Handlers
	a := fx.New(app.Options(cfg, logger, contexts...), fx.Populate(&handlers))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	srv := httptest.NewServer(handlers.Public)
	t.Cleanup(srv.Close)

	body := fmt.Sprintf(`{"email":"ada-%s@example.com","name":"Ada","password":"correct horse battery"}`, apptest.RandomID())
	resp, err := srv.Client().Post(srv.URL+"/api/identity/users", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %s", resp.Status)
	}

	want := map[string]int{}
	for _, name := range chain {
		want[name]++
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		spans := rec.Ended()
		i := slices.IndexFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "POST /api/identity/users" })
		if i < 0 {
			continue
		}
		id := spans[i].SpanContext().TraceID()
		spans = slices.DeleteFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s.SpanContext().TraceID() != id })
		// Spans end in no fixed order: the relay may forward the customer's
		// event before the handler's span that committed it has ended.
		ended := map[string]int{}
		for _, s := range spans {
			ended[s.Name()]++
		}
		if !slices.ContainsFunc(chain, func(name string) bool { return ended[name] < want[name] }) {
			return spans
		}
	}
	t.Fatalf("the spans of the registration did not all end within 30s; spans: %s", names(rec.Ended()))
	return nil
}

// only returns the one span named name, whose parent is parent (any if
// nil).
func only(t *testing.T, spans []sdktrace.ReadOnlySpan, name string, parent sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name && (parent == nil || s.Parent().SpanID() == parent.SpanContext().SpanID()) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		under := ""
		if parent != nil {
			under = " under " + parent.Name()
		}
		t.Fatalf("%d spans %q%s, want 1; the trace:\n%s", len(found), name, under, names(spans))
	}
	return found[0]
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func checkAttr(t *testing.T, s sdktrace.ReadOnlySpan, key, want string) {
	t.Helper()
	if got := attr(s, key); got != want || want == "" {
		t.Errorf("span %q: %s = %q, want %q", s.Name(), key, got, want)
	}
}

func names(spans []sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s (%s, parent %s)\n", s.Name(), s.SpanContext().SpanID(), s.Parent().SpanID())
	}
	return b.String()
}

// tree prints s and its descendants, one per line, with their key
// attributes.
func tree(spans []sdktrace.ReadOnlySpan, s sdktrace.ReadOnlySpan, indent string) string {
	var keys []string
	for _, k := range []string{"messaging.system", "messaging.operation.type", "messaging.destination.name", "messaging.message.id", "app.handler", "app.attempt", "db.system.name", "http.route"} {
		if v := attr(s, k); v != "" {
			keys = append(keys, k+"="+v)
		}
	}
	out := fmt.Sprintf("%s%s [%s %s parent=%s] %s\n", indent, s.Name(), s.SpanKind(), s.SpanContext().SpanID(), s.Parent().SpanID(), strings.Join(keys, " "))
	children := slices.DeleteFunc(slices.Clone(spans), func(c sdktrace.ReadOnlySpan) bool { return c.Parent().SpanID() != s.SpanContext().SpanID() })
	slices.SortFunc(children, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	for _, c := range children {
		out += tree(spans, c, indent+"  ")
	}
	return out
}
