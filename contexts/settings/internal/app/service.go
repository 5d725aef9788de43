// Package app holds the settings context's use cases, one per file.
package app

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/example/monolith/contexts/settings/internal/domain"
	"github.com/example/monolith/contexts/settings/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/setting"
)

// Service runs the settings context's use cases.
type Service struct {
	db     *db.DB
	pub    bus.Publisher
	logger *slog.Logger
}

// NewService builds the service.
func NewService(d *db.DB, pub bus.Publisher, logger *slog.Logger) *Service {
	return &Service{db: d, pub: pub, logger: logger}
}

// validate returns value in canonical form if d accepts it. The rule is
// platform/setting's, the one every context's cache applies, so the store
// never keeps a value a cache would refuse.
func validate(d domain.Definition, value json.RawMessage) (json.RawMessage, error) {
	canonical, err := domain.Canonical(value)
	if err != nil {
		return nil, domain.ValidationError{Key: d.Key, Reason: d.Key + " " + err.Error()}
	}
	if err := setting.Validate(declaration(d), canonical); err != nil {
		return nil, domain.ValidationError{Key: d.Key, Reason: err.Error()}
	}
	return canonical, nil
}

// declaration is d as contexts declare it.
func declaration(d domain.Definition) setting.Definition {
	return setting.Definition{
		Key: d.Key, Type: d.Type, Default: d.Default, Allowed: d.Allowed,
		Min: d.Min, Max: d.Max, Description: d.Description,
	}
}

// settingOf decodes a stored setting; a setting without a stored value has
// its default.
func settingOf(row store.ListSettingsRow) (domain.Setting, error) {
	d := domain.Definition{
		Key: row.Key, Type: row.Type, Default: json.RawMessage(row.DefaultValue),
		Min: nullable(row.MinValue), Max: nullable(row.MaxValue), Description: row.Description,
	}
	if err := json.Unmarshal([]byte(row.Allowed), &d.Allowed); err != nil {
		return domain.Setting{}, fmt.Errorf("decode allowed values of %s: %w", row.Key, err)
	}
	value := d.Default
	if row.Value.Valid {
		value = json.RawMessage(row.Value.String)
	}
	return domain.Setting{Definition: d, Value: value}, nil
}

func nullable(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	return &n.Int64
}

// aggregateID names one setting in the events about it.
func aggregateID(contextName, key string) string { return contextName + "/" + key }
