// Package store is the poison store's persistence.
package store

import (
	"embed"

	"github.com/example/monolith/platform/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates poison_messages and poison_audit.
var Migrations = db.Migrations{Context: "poison", FS: migrationFiles}
