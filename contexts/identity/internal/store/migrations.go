// Package store is identity's persistence: its migrations and the
// sqlc-generated queries over them (generated from sqlc.yaml beside them).
package store

import (
	"embed"

	"github.com/example/monolith/platform/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates identity's tables.
var Migrations = db.Migrations{Context: "identity", FS: migrationFiles}
