package app

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/config"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/outbox"
)

// Config is the whole configuration file. Every key can be overridden by an
// environment variable APP_<PATH>, e.g. APP_HTTP_ADDR, APP_DATABASE_DSN,
// APP_BUS_ADAPTER.
type Config struct {
	HTTP     httpx.Config  `yaml:"http"`
	Database db.Config     `yaml:"database"`
	Bus      bus.Config    `yaml:"bus"`
	Outbox   outbox.Config `yaml:"outbox"`
	Log      LogConfig     `yaml:"log"`
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
		HTTP:     httpx.DefaultConfig(),
		Database: db.DefaultConfig(),
		Bus:      bus.DefaultConfig(),
		Outbox:   outbox.DefaultConfig(),
		Log:      LogConfig{Level: "info", Format: "text"},
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
	return errors.Join(append(errs, c.HTTP.Validate(), c.Database.Validate(), c.Bus.Validate(), c.Outbox.Validate())...)
}
