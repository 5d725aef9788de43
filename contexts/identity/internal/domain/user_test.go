package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewRegistration(t *testing.T) {
	long := strings.Repeat("x", 73)
	tests := []struct {
		email, name, password string
		field                 string // "" when valid
	}{
		{" ada@example.com ", "Ada", "correct horse battery", ""},
		{"not-an-email", "Ada", "correct horse battery", "email"},
		{"Ada <ada@example.com>", "Ada", "correct horse battery", "email"},
		{"ada@example.com", "  ", "correct horse battery", "name"},
		{"ada@example.com", "Ada", "short", "password"},
		{"ada@example.com", "Ada", "elevenchars", "password"},
		{"ada@example.com", "Ada", long, "password"},
	}
	for _, tt := range tests {
		reg, err := NewRegistration(tt.email, tt.name, tt.password)
		var invalid ValidationError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("NewRegistration(%q, %q) = %v, want valid", tt.email, tt.name, err)
		case tt.field == "" && reg.Email != strings.TrimSpace(tt.email):
			t.Errorf("email not trimmed: %q", reg.Email)
		case tt.field != "" && (!errors.As(err, &invalid) || invalid.Field != tt.field):
			t.Errorf("NewRegistration(%q, %q, %d chars) = %v, want a %s error", tt.email, tt.name, len(tt.password), err, tt.field)
		}
	}
}

func TestStatusTransitions(t *testing.T) {
	now := time.Now()
	u := User{Status: StatusPending}
	if err := u.Activate(now); err != nil || u.Status != StatusActive {
		t.Fatalf("activate pending: %v, %s", err, u.Status)
	}
	if err := u.Activate(now); !errors.Is(err, ErrTransition) {
		t.Fatalf("activate active: %v, want ErrTransition", err)
	}
	if err := u.Suspend(now); err != nil || u.Status != StatusSuspended {
		t.Fatalf("suspend active: %v, %s", err, u.Status)
	}
	if err := u.Suspend(now); !errors.Is(err, ErrTransition) {
		t.Fatalf("suspend suspended: %v, want ErrTransition", err)
	}
	if err := u.Activate(now); err != nil || u.Status != StatusActive {
		t.Fatalf("reactivate suspended: %v, %s", err, u.Status)
	}
}

func TestNormalizeEmail(t *testing.T) {
	if NormalizeEmail(" Ada@Example.COM ") != "ada@example.com" {
		t.Fatal("emails are not compared case-insensitively")
	}
}
