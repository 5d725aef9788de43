// Package store is the settings context's persistence: its migrations and the
// sqlc-generated queries over them (generated from sqlc.yaml beside them).
// JSON values are kept as text; the app package encodes and decodes them.
package store

import (
	"embed"

	"github.com/example/monolith/platform/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates the settings context's tables.
var Migrations = db.Migrations{Context: "settings", FS: migrationFiles}
