// Package domain holds the settings context's rules, free of storage and
// transport.
package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Errors the use cases return.
var (
	ErrContextNotFound = errors.New("context has declared no settings")
	ErrSettingNotFound = errors.New("setting not found")
	ErrInvalidSchema   = errors.New("invalid settings schema")
)

// ValidationError is a value its setting's definition rejects.
type ValidationError struct{ Key, Reason string }

func (e ValidationError) Error() string { return e.Reason }

// Definition is one setting as its owning context declared it. Values are
// JSON: true, 42, "pro".
type Definition struct {
	Key         string
	Type        string
	Default     json.RawMessage
	Allowed     []string // for strings: the only valid values; empty allows any
	Min, Max    *int64   // for ints
	Description string
}

// Setting is a definition with its current value: the stored one, or the
// default when none is stored.
type Setting struct {
	Definition
	Value json.RawMessage
}

// Canonical re-encodes a JSON value so that equal values have equal bytes
// (` true` and `true`, `"\u0070ro"` and `"pro"`): values are stored and
// compared in this form. It refuses null, which decodes as any type's zero
// value and so would pass for a valid value of every type. Its errors are
// worded to follow the setting's key: "tier must not be null".
func Canonical(value json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber() // keeps integers beyond float64's precision intact
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("is not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("is not a single JSON value")
	}
	if v == nil {
		return nil, errors.New("must not be null")
	}
	return json.Marshal(v)
}
