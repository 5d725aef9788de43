// Package app holds identity's use cases, one per file.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/example/monolith/contexts/identity/internal/domain"
	"github.com/example/monolith/contexts/identity/internal/store"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/setting"
)

// Settings identity declares.
var Settings = setting.Schema{Context: "identity", Settings: []setting.Definition{
	setting.Bool(SettingRegistrationOpen, true, "whether new users may register"),
}}

// SettingRegistrationOpen is the setting that, when false, makes registering return 403.
const SettingRegistrationOpen = "registration_open"

// Service runs identity's use cases.
type Service struct {
	db       *db.DB
	settings *setting.Cache
	cost     int // bcrypt work factor
}

// NewService builds the service.
func NewService(d *db.DB, settings *setting.Cache, cfg Config) *Service {
	return &Service{db: d, settings: settings, cost: cfg.BcryptCost}
}

// loadUser reads a user inside tx.
func loadUser(ctx context.Context, q *store.Queries, id string) (domain.User, error) {
	row, err := q.GetUser(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.User{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("load user %s: %w", id, err)
	}
	return domain.User{
		ID: row.ID, Email: row.Email, Name: row.Name, PasswordHash: row.PasswordHash,
		Status: domain.Status(row.Status), CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
	}, nil
}
