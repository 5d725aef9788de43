// Package identity owns users: registration, activation and suspension.
// What it publishes, handles and serves: docs/events.md.
package identity
