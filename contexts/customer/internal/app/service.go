// Package app holds customer's use cases, one per file.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/example/monolith/contexts/customer/internal/domain"
	"github.com/example/monolith/contexts/customer/internal/store"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

// Settings customer declares.
var Settings = setting.Schema{Context: "customer", Settings: []setting.Definition{
	setting.Enum(SettingDefaultTier, string(domain.TierFree),
		[]string{string(domain.TierFree), string(domain.TierPro), string(domain.TierEnterprise)},
		"tier given to new customers"),
}}

// SettingDefaultTier is the tier a new customer starts with.
const SettingDefaultTier = "default_tier"

// Service runs customer's use cases.
type Service struct {
	db       *db.DB
	settings *setting.Cache
}

// NewService builds the service.
func NewService(d *db.DB, settings *setting.Cache) *Service {
	return &Service{db: d, settings: settings}
}

// loadCustomer reads a customer inside tx.
func loadCustomer(ctx context.Context, q *store.Queries, id string) (domain.Customer, error) {
	row, err := q.GetCustomer(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Customer{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Customer{}, fmt.Errorf("load customer %s: %w", id, err)
	}
	return toDomain(row), nil
}

func toDomain(row store.Customer) domain.Customer {
	return domain.Customer{
		ID: row.ID, UserID: row.UserID, Email: row.Email, Name: row.Name, Tier: domain.Tier(row.Tier),
		Active: row.Active, CreatedAt: row.CreatedAt.UTC(), UpdatedAt: row.UpdatedAt.UTC(), DealsWon: row.DealsWon,
	}
}

// updatedEvent is customer.customer.updated for c's current state.
func updatedEvent(c domain.Customer) topics.CustomerUpdatedV1 {
	return topics.CustomerUpdatedV1{CustomerID: c.ID, Name: c.Name, Tier: string(c.Tier), Active: c.Active}
}
