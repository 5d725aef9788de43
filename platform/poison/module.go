package poison

import (
	"context"
	"time"

	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/poison/internal/store"
)

// Migrations creates the poison store's tables; the application applies
// them through Module, tests of other packages directly.
var Migrations = store.Migrations

// Module provides the *Store, its table, the handler that fills it and its
// HTTP routes.
var Module = fx.Module("poison",
	db.ProvideMigrations(store.Migrations),
	fx.Provide(
		NewStore,
		bus.AsHandlers(func(s *Store) []bus.Handler { return []bus.Handler{s.Handler()} }),
		httpx.AsRoutes(Routes),
		outbox.AsPruner(func(s *Store) outbox.Pruner {
			return outbox.Pruner{What: "poisoned messages", Prune: func(ctx context.Context, retention time.Duration) (int64, error) {
				return s.Prune(ctx, db.Now().Add(-retention))
			}}
		}),
	),
)
