package app

import (
	"context"
	"time"

	"github.com/example/monolith/contexts/identity/internal/domain"
	"github.com/example/monolith/contexts/identity/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/topics"
)

// Activate makes a user active and publishes identity.user.activated.
func (s *Service) Activate(ctx context.Context, id string) (domain.User, error) {
	return s.changeStatus(ctx, id, (*domain.User).Activate, func(ctx context.Context, tx *db.Tx, u domain.User) error {
		return bus.Publish(ctx, outbox.Publisher(tx), topics.UserActivated, u.ID, topics.UserActivatedV1{UserID: u.ID})
	})
}

// Suspend makes a user suspended and publishes identity.user.suspended.
func (s *Service) Suspend(ctx context.Context, id string) (domain.User, error) {
	return s.changeStatus(ctx, id, (*domain.User).Suspend, func(ctx context.Context, tx *db.Tx, u domain.User) error {
		return bus.Publish(ctx, outbox.Publisher(tx), topics.UserSuspended, u.ID, topics.UserSuspendedV1{UserID: u.ID})
	})
}

// changeStatus loads, changes and saves a user and publishes its event, in
// one transaction.
func (s *Service) changeStatus(ctx context.Context, id string, change func(*domain.User, time.Time) error, publish func(context.Context, *db.Tx, domain.User) error) (domain.User, error) {
	var u domain.User
	err := s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		q := store.New(s.db.Q(ctx))
		var err error
		if u, err = loadUser(ctx, q, id); err != nil {
			return err
		}
		if err := change(&u, db.Now()); err != nil {
			return err
		}
		if err := q.UpdateUserStatus(ctx, store.UpdateUserStatusParams{ID: u.ID, Status: string(u.Status), UpdatedAt: u.UpdatedAt}); err != nil {
			return err
		}
		return publish(ctx, tx, u)
	})
	return u, err
}
