package app

import (
	"context"
	"fmt"

	"github.com/example/monolith/contexts/settings/internal/domain"
	"github.com/example/monolith/contexts/settings/internal/store"
)

// List reads a context's settings with their current values, by key.
func (s *Service) List(ctx context.Context, contextName string) ([]domain.Setting, error) {
	rows, err := store.New(s.db.Q(ctx)).ListSettings(ctx, contextName)
	if err != nil {
		return nil, fmt.Errorf("list settings of %s: %w", contextName, err)
	}
	if len(rows) == 0 {
		return nil, domain.ErrContextNotFound
	}
	settings := make([]domain.Setting, len(rows))
	for i, row := range rows {
		if settings[i], err = settingOf(row); err != nil {
			return nil, err
		}
	}
	return settings, nil
}
