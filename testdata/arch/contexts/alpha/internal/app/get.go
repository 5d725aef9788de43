package app

import (
	"context"

	"github.com/example/monolith/contexts/alpha/internal/store"
)

func (s *Service) Get(ctx context.Context, id string) error {
	if _, err := store.New(s.db.Q(ctx)).Get(ctx, id); err != nil { // joins the ambient transaction
		return err
	}
	// Reads through the pool, outside a handler's transaction.
	_, err := store.New(s.db).Get(ctx, id)
	return err
}
