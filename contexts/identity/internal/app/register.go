package app

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/example/monolith/contexts/identity/internal/domain"
	"github.com/example/monolith/contexts/identity/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/topics"
)

// Register signs a user up and publishes identity.user.registered in the
// same transaction.
func (s *Service) Register(ctx context.Context, email, name, password string) (domain.User, error) {
	if !s.settings.Bool(SettingRegistrationOpen) {
		return domain.User{}, domain.ErrRegistrationClosed
	}
	reg, err := domain.NewRegistration(email, name, password)
	if err != nil {
		return domain.User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(reg.Password), s.cost)
	if err != nil {
		return domain.User{}, fmt.Errorf("hash password: %w", err)
	}
	now := db.Now()
	u := domain.User{
		ID: uuid.Must(uuid.NewV7()).String(), Email: reg.Email, Name: reg.Name, PasswordHash: string(hash),
		Status: domain.StatusPending, CreatedAt: now, UpdatedAt: now,
	}
	err = s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := store.New(s.db.Q(ctx)).CreateUser(ctx, store.CreateUserParams{
			ID: u.ID, Email: u.Email, EmailNormalized: domain.NormalizeEmail(u.Email), Name: u.Name,
			PasswordHash: u.PasswordHash, Status: string(u.Status), CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
		})
		if err != nil {
			return err
		}
		return bus.Publish(ctx, outbox.Publisher(tx), topics.UserRegistered, u.ID,
			topics.UserRegisteredV1{UserID: u.ID, Email: u.Email, Name: u.Name})
	})
	if db.IsUniqueViolation(err) {
		return domain.User{}, domain.ErrEmailTaken
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}
