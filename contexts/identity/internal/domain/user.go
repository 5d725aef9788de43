// Package domain holds identity's rules, free of storage and transport.
package domain

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Status is where a user is in its life cycle.
type Status string

// Statuses; a user starts pending.
const (
	StatusPending   Status = "pending"
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

// Errors the use cases return.
var (
	ErrNotFound           = errors.New("user not found")
	ErrEmailTaken         = errors.New("email already registered")
	ErrRegistrationClosed = errors.New("registration is closed")
	ErrTransition         = errors.New("status transition not allowed")
)

// ValidationError is input that breaks a rule.
type ValidationError struct{ Field, Reason string }

func (e ValidationError) Error() string { return e.Field + ": " + e.Reason }

// User is the identity aggregate.
type User struct {
	ID           string
	Email        string
	Name         string
	PasswordHash string
	Status       Status
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Registration is validated sign-up input.
type Registration struct {
	Email    string
	Name     string
	Password string
}

// NewRegistration validates sign-up input; the email is trimmed.
func NewRegistration(email, name, password string) (Registration, error) {
	email, name = strings.TrimSpace(email), strings.TrimSpace(name)
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
		return Registration{}, ValidationError{"email", "must be an email address"}
	}
	if name == "" || utf8.RuneCountInString(name) > 200 {
		return Registration{}, ValidationError{"name", "must be 1 to 200 characters"}
	}
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return Registration{}, ValidationError{"password", fmt.Sprintf("must be at least %d characters", MinPasswordLength)}
	}
	if len(password) > 72 { // bcrypt reads no further
		return Registration{}, ValidationError{"password", "must be at most 72 bytes"}
	}
	return Registration{Email: email, Name: name, Password: password}, nil
}

// NormalizeEmail is the form emails are unique in: case-insensitive.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Activate makes a pending or suspended user active.
func (u *User) Activate(now time.Time) error {
	if u.Status == StatusActive {
		return fmt.Errorf("%w: user is already active", ErrTransition)
	}
	u.Status, u.UpdatedAt = StatusActive, now
	return nil
}

// Suspend makes a pending or active user suspended.
func (u *User) Suspend(now time.Time) error {
	if u.Status == StatusSuspended {
		return fmt.Errorf("%w: user is already suspended", ErrTransition)
	}
	u.Status, u.UpdatedAt = StatusSuspended, now
	return nil
}
