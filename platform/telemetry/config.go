package telemetry

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"reflect"
	"strings"

	"github.com/example/monolith/platform/config"
)

// Exporters, chosen by telemetry.tracing.exporter.
const (
	// ExporterNone records nothing; trace context a caller sends still
	// travels through requests and events, and into the logs.
	ExporterNone = "none"
	// ExporterStdout writes finished spans to standard output as JSON, one
	// per line.
	ExporterStdout = "stdout"
	// ExporterOTLP sends spans to an OpenTelemetry collector (or Jaeger)
	// over OTLP/HTTP.
	ExporterOTLP = "otlp"
)

// Config is the telemetry section of the configuration file.
type Config struct {
	// ServiceName is the service.name every span carries.
	ServiceName string `yaml:"service_name"`
	// Tracing chooses where spans go.
	Tracing TracingConfig `yaml:"tracing"`
}

// TracingConfig is telemetry.tracing.
type TracingConfig struct {
	// Exporter is none (the default), stdout or otlp.
	Exporter string `yaml:"exporter"`
	// SamplingRatio is the fraction of traces started here that are
	// recorded, 0 to 1; a trace started by the caller (a traceparent
	// header) keeps the caller's decision.
	SamplingRatio float64 `yaml:"sampling_ratio"`
	// OTLP is where the otlp exporter sends spans.
	OTLP OTLPConfig `yaml:"otlp"`
}

// OTLPConfig is telemetry.tracing.otlp.
type OTLPConfig struct {
	// Endpoint is the collector's base URL: spans are POSTed to
	// <endpoint>/v1/traces (OTLP/HTTP, protobuf), with TLS for https.
	Endpoint string `yaml:"endpoint"`
	// Headers are sent with every export, e.g. an API key.
	Headers map[string]string `yaml:"headers"`
}

// DefaultConfig exports nothing, and names the service after the module
// (the last element of its import path), so a copy of the template under
// another path is named after itself.
func DefaultConfig() Config {
	return Config{
		ServiceName: defaultServiceName,
		Tracing: TracingConfig{
			Exporter:      ExporterNone,
			SamplingRatio: 1,
			OTLP:          OTLPConfig{Endpoint: "http://localhost:4318"},
		},
	}
}

var defaultServiceName = path.Base(strings.TrimSuffix(reflect.TypeFor[Config]().PkgPath(), "/platform/telemetry"))

// Validate reports invalid keys by their path in the file.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.ServiceName) == "" {
		errs = append(errs, errors.New("telemetry.service_name: required"))
	}
	t := c.Tracing
	switch t.Exporter {
	case ExporterNone, ExporterStdout, ExporterOTLP:
	default:
		errs = append(errs, fmt.Errorf("telemetry.tracing.exporter: unknown exporter %q (want none, stdout or otlp)", t.Exporter))
	}
	if !(t.SamplingRatio >= 0 && t.SamplingRatio <= 1) { // NaN too
		errs = append(errs, fmt.Errorf("telemetry.tracing.sampling_ratio: must be 0 to 1, got %v", t.SamplingRatio))
	}
	if _, err := endpointURL(t.OTLP.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("telemetry.tracing.otlp.endpoint: %w", err))
	}
	for name, value := range t.OTLP.Headers {
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			errs = append(errs, fmt.Errorf("telemetry.tracing.otlp.headers: %q is not a header name", name))
		}
		if strings.ContainsAny(value, "\r\n") {
			errs = append(errs, fmt.Errorf("telemetry.tracing.otlp.headers.%s: a line break in the value", name))
		}
	}
	return errors.Join(errs...)
}

// endpointURL parses the collector's base URL.
func endpointURL(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http:// or https:// URL", config.Redact(endpoint))
	}
	return u, nil
}
