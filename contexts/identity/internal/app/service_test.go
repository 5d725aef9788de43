package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/example/monolith/contexts/identity"
	"github.com/example/monolith/contexts/identity/internal/app"
	"github.com/example/monolith/contexts/identity/internal/domain"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

func TestIdentity(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		ctx := context.Background()
		cache := setting.NewCache(app.Settings)
		s := app.NewService(h.DB, cache, app.Config{BcryptCost: bcrypt.MinCost})

		u, err := s.Register(ctx, "Ada@Example.com", "Ada Lovelace", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if u.Status != domain.StatusPending || u.Email != "Ada@Example.com" {
			t.Fatalf("registered %+v", u)
		}
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte("correct horse battery")) != nil {
			t.Fatal("password is not stored as its bcrypt hash")
		}
		payload, _ := json.Marshal(contexttest.Next(t, h, topics.UserRegistered).Payload)
		if strings.Contains(string(payload), "horse") || strings.Contains(string(payload), "$2a$") {
			t.Fatalf("event leaks the password: %s", payload)
		}

		if _, err := s.Register(ctx, "ada@EXAMPLE.com", "Other Ada", "another long password"); !errors.Is(err, domain.ErrEmailTaken) {
			t.Fatalf("duplicate email (other case): %v, want ErrEmailTaken", err)
		}
		var invalid domain.ValidationError
		if _, err := s.Register(ctx, "bob@example.com", "Bob", "short"); !errors.As(err, &invalid) {
			t.Fatalf("short password: %v, want a validation error", err)
		}

		got, err := s.Get(ctx, u.ID)
		if err != nil || got.ID != u.ID || got.Name != "Ada Lovelace" {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if _, err := s.Get(ctx, "missing"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
		}

		if got, err = s.Activate(ctx, u.ID); err != nil || got.Status != domain.StatusActive {
			t.Fatalf("Activate = %+v, %v", got, err)
		}
		if got, err = s.Suspend(ctx, u.ID); err != nil || got.Status != domain.StatusSuspended {
			t.Fatalf("Suspend = %+v, %v", got, err)
		}
		if _, err := s.Suspend(ctx, u.ID); !errors.Is(err, domain.ErrTransition) {
			t.Fatalf("second Suspend = %v, want ErrTransition", err)
		}
		if got, _ = s.Get(ctx, u.ID); got.Status != domain.StatusSuspended {
			t.Fatalf("stored status %s, want suspended", got.Status)
		}
		contexttest.Next(t, h, topics.UserSuspended)

		cache.Apply(topics.SettingUpdatedV1{Context: "identity", Key: app.SettingRegistrationOpen, Value: json.RawMessage("false")})
		if _, err := s.Register(ctx, "carol@example.com", "Carol", "correct horse battery"); !errors.Is(err, domain.ErrRegistrationClosed) {
			t.Fatalf("register while closed: %v, want ErrRegistrationClosed", err)
		}
		// Rejected registrations publish nothing.
		contexttest.None(t, h, topics.UserRegistered)
	}, identity.Module)
}
