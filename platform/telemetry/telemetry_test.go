package telemetry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
)

func TestDefaultConfigExportsNothing(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.ServiceName != "monolith" {
		t.Errorf("default service name %q, want the module's last path element", cfg.ServiceName)
	}
	tp, err := NewTracerProvider(cfg, io.Discard)
	if err != nil || tp != nil {
		t.Fatalf("NewTracerProvider(none) = %v, %v; want nil, nil", tp, err)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Tracing.Exporter = "x" }, `telemetry.tracing.exporter: unknown exporter "x" (want none, stdout or otlp)`},
		{func(c *Config) { c.Tracing.Exporter = "" }, `telemetry.tracing.exporter: unknown exporter ""`},
		{func(c *Config) { c.Tracing.SamplingRatio = 1.5 }, "telemetry.tracing.sampling_ratio: must be 0 to 1, got 1.5"},
		{func(c *Config) { c.Tracing.SamplingRatio = -0.1 }, "telemetry.tracing.sampling_ratio: must be 0 to 1, got -0.1"},
		{func(c *Config) { c.Tracing.OTLP.Endpoint = "localhost:4318" }, `telemetry.tracing.otlp.endpoint: "localhost:4318" is not an http:// or https:// URL`},
		{func(c *Config) { c.Tracing.OTLP.Endpoint = "https://user:secret@collector" }, ""},
		{func(c *Config) { c.Tracing.OTLP.Endpoint = "ftp://user:secret@collector" }, `telemetry.tracing.otlp.endpoint: "ftp://user:xxxxx@collector" is not`},
		{func(c *Config) { c.Tracing.OTLP.Headers = map[string]string{"x-api key": "k"} }, `telemetry.tracing.otlp.headers: "x-api key" is not a header name`},
		{func(c *Config) { c.Tracing.OTLP.Headers = map[string]string{"x-api-key": "k\r\nx: y"} }, "telemetry.tracing.otlp.headers.x-api-key: a line break in the value"},
		{func(c *Config) { c.ServiceName = " " }, "telemetry.service_name: required"},
	} {
		cfg := DefaultConfig()
		tc.change(&cfg)
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Validate() = %v, want nil", err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

func TestStdoutExporter(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tracing.Exporter = ExporterStdout
	var out bytes.Buffer
	tp, err := NewTracerProvider(cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "the span")
	span.End()
	if err := tp.Shutdown(context.Background()); err != nil { // flushes
		t.Fatal(err)
	}
	for _, want := range []string{`"Name":"the span"`, `"Value":"monolith"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout exporter wrote %s, want %s in it", out.String(), want)
		}
	}
}

// TestOTLPExporter checks where spans go and with which headers: the
// collector's base URL plus /v1/traces, as OTEL_EXPORTER_OTLP_ENDPOINT does.
func TestOTLPExporter(t *testing.T) {
	for _, base := range []string{"", "/otlp"} {
		var (
			mu    sync.Mutex
			paths []string
			keys  []string
		)
		collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths, keys = append(paths, r.Method+" "+r.URL.Path), append(keys, r.Header.Get("X-Api-Key"))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/x-protobuf")
		}))
		cfg := DefaultConfig()
		cfg.Tracing.Exporter = ExporterOTLP
		cfg.Tracing.OTLP = OTLPConfig{Endpoint: collector.URL + base, Headers: map[string]string{"x-api-key": "k1"}}
		tp, err := NewTracerProvider(cfg, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		_, span := tp.Tracer("test").Start(context.Background(), "exported")
		span.End()
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		collector.Close()
		want := "POST " + base + "/v1/traces"
		if !slices.Equal(paths, []string{want}) || !slices.Equal(keys, []string{"k1"}) {
			t.Errorf("endpoint %s: collector got %v with keys %v, want [%s] with [k1]", cfg.Tracing.OTLP.Endpoint, paths, keys, want)
		}
	}
}

// TestModuleInstallsThePropagator checks that trace context propagates with
// the none exporter: nothing is recorded, nothing dropped.
func TestModuleInstallsThePropagator(t *testing.T) {
	app := fxtest.New(t, fx.Supply(DefaultConfig(), slog.New(slog.DiscardHandler)), Module)
	app.RequireStart().RequireStop()
	fields := otel.GetTextMapPropagator().Fields()
	for _, want := range []string{"traceparent", "tracestate", "baggage"} {
		if !slices.Contains(fields, want) {
			t.Errorf("propagator fields %v lack %s", fields, want)
		}
	}
}
