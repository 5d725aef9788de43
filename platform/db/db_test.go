package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
)

var migrations = db.Migrations{Context: "test", FS: fstest.MapFS{
	"001_create_things.sql": {Data: []byte("CREATE TABLE things (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE);\nCREATE INDEX things_name ON things (name);\n")},
	"002_add_flag.sql":      {Data: []byte("ALTER TABLE things ADD COLUMN flag BOOLEAN NOT NULL DEFAULT FALSE;\n")},
}}

func TestMigrateTransactionsAndUniqueViolations(t *testing.T) {
	dbtest.Each(t, []db.Migrations{migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		// Applying again is a no-op.
		if err := d.Migrate(ctx, migrations); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		var applied int
		if err := d.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE context = 'test'`).Scan(&applied); err != nil || applied != 2 {
			t.Fatalf("applied = %d, %v; want 2", applied, err)
		}

		insert := func(tx *db.Tx, id, name string) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO things (id, name, flag) VALUES ($1, $2, $3)`, id, name, true)
			return err
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return insert(tx, "1", "a") }); err != nil {
			t.Fatal(err)
		}
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := insert(tx, "2", "b"); err != nil {
				return err
			}
			return insert(tx, "3", "a") // duplicate name
		})
		if !db.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert: %v, want a unique violation", err)
		}
		var n int
		if err := d.QueryRowContext(ctx, `SELECT COUNT(*) FROM things`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows after rollback = %d, %v; want 1 (the failed transaction left nothing)", n, err)
		}
		if db.IsUniqueViolation(errors.New("other")) {
			t.Fatal("any error counted as a unique violation")
		}
	})
}

func TestBrokenMigrationNamesTheFile(t *testing.T) {
	broken := db.Migrations{Context: "broken", FS: fstest.MapFS{"001_bad.sql": {Data: []byte("CREATE TABLE (;\n")}}}
	d := dbtest.Open(t, db.DriverSQLite)
	err := d.Migrate(context.Background(), broken)
	if err == nil || !strings.Contains(err.Error(), "broken/001_bad.sql") {
		t.Fatalf("Migrate = %v, want an error naming broken/001_bad.sql", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := db.Config{Driver: "mysql", MaxOpenConns: 1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "database.driver") || !strings.Contains(err.Error(), "database.dsn") {
		t.Fatalf("Validate = %v, want database.driver and database.dsn named", err)
	}
}
