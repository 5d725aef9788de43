// Package customer owns customers, one per user, and the deals they win.
// What it publishes, handles and serves: docs/events.md.
package customer
