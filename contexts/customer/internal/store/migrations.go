// Package store is customer's persistence: its migrations and the
// sqlc-generated queries over them (generated from sqlc.yaml beside them).
package store

import (
	"embed"

	"github.com/example/monolith/platform/db"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates customer's tables.
var Migrations = db.Migrations{Context: "customer", FS: migrationFiles}
