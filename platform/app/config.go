package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/config"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/telemetry"
)

// Config is the whole configuration file. Every key can be overridden by an
// environment variable APP_<PATH>, e.g. APP_HTTP_ADDR, APP_DATABASE_DSN,
// APP_BUS_ADAPTER.
type Config struct {
	HTTP httpx.Config `yaml:"http"`
	// Admin is the listener of the ops API and /metrics.
	Admin    httpx.AdminConfig `yaml:"admin"`
	Database db.Config         `yaml:"database"`
	Bus      bus.Config        `yaml:"bus"`
	Outbox   outbox.Config     `yaml:"outbox"`
	Log      LogConfig         `yaml:"log"`
	// Telemetry chooses where trace spans go (nowhere by default).
	Telemetry telemetry.Config `yaml:"telemetry"`
	// Contexts holds one section per bounded context, which the context
	// declares and decodes itself with config.Section.
	Contexts config.Sections `yaml:"contexts"`
}

// LogConfig is the log section.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// DefaultConfig runs everything in process: gochannel and SQLite under ./data.
func DefaultConfig() Config {
	return Config{
		HTTP:      httpx.DefaultConfig(),
		Admin:     httpx.DefaultAdminConfig(),
		Database:  db.DefaultConfig(),
		Bus:       bus.DefaultConfig(),
		Outbox:    outbox.DefaultConfig(),
		Log:       LogConfig{Level: "info", Format: "text"},
		Telemetry: telemetry.DefaultConfig(),
	}
}

// LoadConfig reads path ("" for defaults and environment only) and validates
// the result; every error names the offending key.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if err := config.Load(path, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		if path == "" {
			path = "defaults"
		}
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks every section.
func (c Config) Validate() error {
	var level slog.Level
	var errs []error
	if err := level.UnmarshalText([]byte(c.Log.Level)); err != nil {
		errs = append(errs, fmt.Errorf("log.level: unknown level %q (want debug, info, warn or error)", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: unknown format %q (want text or json)", c.Log.Format))
	}
	if sameListener(c.HTTP.Addr, c.Admin.Addr) {
		errs = append(errs, fmt.Errorf("admin.addr: %q would share a port with http.addr %q: the admin listener needs a port of its own", c.Admin.Addr, c.HTTP.Addr))
	}
	return errors.Join(append(errs, c.HTTP.Validate(), c.Admin.Validate(), c.Database.Validate(), c.Bus.Validate(), c.Outbox.Validate(), c.Telemetry.Validate())...)
}

// sameListener reports whether listen addresses a and b claim one port on
// one interface (an empty host or an unspecified IP is every interface).
func sameListener(a, b string) bool {
	hostA, portA, errA := net.SplitHostPort(a)
	hostB, portB, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || portA != portB || portA == "0" {
		return false
	}
	every := func(host string) bool { ip := net.ParseIP(host); return host == "" || ip != nil && ip.IsUnspecified() }
	return hostA == hostB || every(hostA) || every(hostB)
}
