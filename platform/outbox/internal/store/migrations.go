// Package store is the outbox's own persistence: the processed-events
// record of idempotent handlers (the outbox table itself is Watermill's).
package store

import (
	"embed"

	"github.com/example/monolith/platform/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates processed_events.
var Migrations = db.Migrations{Context: "outbox", FS: migrationFiles}
