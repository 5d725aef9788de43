package ports

import (
	"github.com/example/monolith/contexts/customer/internal/app"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
)

// Handlers are customer's event handlers, one file each, named after the
// event consumed. Every adapter may deliver an event more than once:
// outbox.NewHandler applies each event once.
func Handlers(d *db.DB, s *app.Service) []bus.Handler {
	return []bus.Handler{
		onUserRegistered(d, s),
		onUserSuspended(d, s),
		onDealWon(d, s),
	}
}
