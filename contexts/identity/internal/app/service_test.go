package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/example/monolith/contexts/identity/internal/app"
	"github.com/example/monolith/contexts/identity/internal/domain"
	"github.com/example/monolith/contexts/identity/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox/outboxtest"
	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

// events records what identity publishes on a real in-process bus.
type events struct {
	mu         sync.Mutex
	registered []bus.Event[topics.UserRegisteredV1]
	suspended  []bus.Event[topics.UserSuspendedV1]
}

func (e *events) count() (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.registered), len(e.suspended)
}

func newService(t *testing.T, d *db.DB) (*app.Service, *setting.Cache, *events) {
	t.Helper()
	b, err := bus.New(context.Background(), bus.DefaultConfig(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	rec := &events{}
	err = b.Register(
		bus.NewHandler("test.record-registered", topics.UserRegistered, func(_ context.Context, e bus.Event[topics.UserRegisteredV1]) error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.registered = append(rec.registered, e)
			return nil
		}),
		bus.NewHandler("test.record-suspended", topics.UserSuspended, func(_ context.Context, e bus.Event[topics.UserSuspendedV1]) error {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.suspended = append(rec.suspended, e)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	outboxtest.Relay(t, d, b)
	cache := setting.NewCache(app.Settings)
	return app.NewService(d, cache, app.Config{BcryptCost: bcrypt.MinCost}), cache, rec
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestIdentity(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, cache, rec := newService(t, d)

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
		waitFor(t, "identity.user.registered", func() bool { n, _ := rec.count(); return n == 1 })
		rec.mu.Lock()
		payload, _ := json.Marshal(rec.registered[0].Payload)
		rec.mu.Unlock()
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
		waitFor(t, "identity.user.suspended", func() bool { _, n := rec.count(); return n == 1 })

		cache.Apply(topics.SettingUpdatedV1{Context: "identity", Key: app.SettingRegistrationOpen, Value: json.RawMessage("false")})
		if _, err := s.Register(ctx, "carol@example.com", "Carol", "correct horse battery"); !errors.Is(err, domain.ErrRegistrationClosed) {
			t.Fatalf("register while closed: %v, want ErrRegistrationClosed", err)
		}
		if n, _ := rec.count(); n != 1 {
			t.Fatalf("%d registrations published, want 1 (rejected ones publish nothing)", n)
		}
	})
}
