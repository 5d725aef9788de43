// Package dbtest gives tests a migrated database on each driver: a SQLite
// file in a temporary directory, or a fresh PostgreSQL database on the local
// server, dropped when the test ends.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/testenv"
)

// Drivers are the drivers every repository test runs against.
var Drivers = []string{db.DriverSQLite, db.DriverPostgres}

// Each runs fn once per driver, as subtests, with a freshly migrated database.
func Each(t *testing.T, sets []db.Migrations, fn func(t *testing.T, d *db.DB)) {
	for _, driver := range Drivers {
		t.Run(driver, func(t *testing.T) { fn(t, Open(t, driver, sets...)) })
	}
}

// Open returns a new, migrated database for driver.
func Open(t testing.TB, driver string, sets ...db.Migrations) *db.DB {
	t.Helper()
	cfg := Config(t, driver)
	d, err := db.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s: %v", driver, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.Migrate(context.Background(), sets...); err != nil {
		t.Fatalf("migrate %s: %v", driver, err)
	}
	return d
}

// Config returns the configuration of a new, empty database for driver.
func Config(t testing.TB, driver string) db.Config {
	t.Helper()
	cfg := db.DefaultConfig()
	cfg.Driver = driver
	switch driver {
	case db.DriverSQLite:
		cfg.DSN = filepath.Join(t.TempDir(), "test.db")
	case db.DriverPostgres:
		cfg.DSN = newPostgresDatabase(t)
	default:
		t.Fatalf("unknown driver %q", driver)
	}
	return cfg
}

// newPostgresDatabase creates a database for this test and returns its DSN.
func newPostgresDatabase(t testing.TB) string {
	t.Helper()
	admin := testenv.RequirePostgres(t)
	conn, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "test_" + hex.EncodeToString(b)
	if _, err := conn.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if conn, err := sql.Open("pgx", admin); err == nil {
			_, _ = conn.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			_ = conn.Close()
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("TEST_POSTGRES_DSN must be a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
