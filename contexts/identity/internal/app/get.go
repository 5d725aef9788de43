package app

import (
	"context"

	"github.com/example/monolith/contexts/identity/internal/domain"
	"github.com/example/monolith/contexts/identity/internal/store"
)

// Get reads a user.
func (s *Service) Get(ctx context.Context, id string) (domain.User, error) {
	return loadUser(ctx, store.New(s.db.Q(ctx)), id)
}
