package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/example/monolith/contexts/customer/internal/domain"
	"github.com/example/monolith/contexts/customer/internal/store"
)

// ListLimit caps how many customers List returns.
const ListLimit = 100

// Get reads a customer.
func (s *Service) Get(ctx context.Context, id string) (domain.Customer, error) {
	return loadCustomer(ctx, store.New(s.db.Q(ctx)), id)
}

// List returns the newest customers, at most ListLimit, or only the
// customer of userID when it is not empty.
func (s *Service) List(ctx context.Context, userID string) ([]domain.Customer, error) {
	q := store.New(s.db.Q(ctx))
	if userID != "" {
		// A user has at most one customer.
		row, err := q.GetCustomerByUserID(ctx, userID)
		if errors.Is(err, sql.ErrNoRows) {
			return []domain.Customer{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("load customer of user %s: %w", userID, err)
		}
		return []domain.Customer{toDomain(row)}, nil
	}
	rows, err := q.ListCustomers(ctx, ListLimit)
	if err != nil {
		return nil, fmt.Errorf("list customers: %w", err)
	}
	customers := make([]domain.Customer, 0, len(rows))
	for _, row := range rows {
		customers = append(customers, toDomain(row))
	}
	return customers, nil
}
