package ports

import (
	"context"
	"errors"

	"github.com/example/monolith/contexts/settings/internal/app"
	"github.com/example/monolith/contexts/settings/internal/domain"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

// Handlers are the settings context's bus handlers. store-schema is not a
// broadcast handler: one instance storing an announce is enough, and the
// values it republishes reach every instance's cache.
func Handlers(d *db.DB, s *app.Service) []bus.Handler {
	return []bus.Handler{
		outbox.NewHandler(d, "settings.store-schema", topics.SchemaAnnounced,
			func(ctx context.Context, e bus.Event[topics.SchemaAnnouncedV1]) error {
				err := s.StoreSchema(ctx, setting.Schema{Context: e.Payload.Context, Settings: e.Payload.Settings})
				if errors.Is(err, domain.ErrInvalidSchema) {
					return bus.Permanent(err) // the same announce would fail again
				}
				return err
			}),
	}
}
