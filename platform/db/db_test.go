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

		insert := func(ctx context.Context, id, name string) error {
			_, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO things (id, name, flag) VALUES ($1, $2, $3)`, id, name, true)
			return err
		}
		if err := d.InTx(ctx, func(ctx context.Context, _ *db.Tx) error { return insert(ctx, "1", "a") }); err != nil {
			t.Fatal(err)
		}
		err := d.InTx(ctx, func(ctx context.Context, _ *db.Tx) error {
			if err := insert(ctx, "2", "b"); err != nil {
				return err
			}
			return insert(ctx, "3", "a") // duplicate name
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

// TestQAndNestedInTxJoinTheTransaction: with the ctx InTx gives, Q and a
// nested InTx run on its transaction, so they see its writes and roll back
// with it; elsewhere, and for another database, Q is the pool.
func TestQAndNestedInTxJoinTheTransaction(t *testing.T) {
	dbtest.Each(t, []db.Migrations{migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		other := dbtest.Open(t, db.DriverSQLite)
		if d.Q(ctx) != d.DB {
			t.Fatal("Q outside a transaction is not the pool")
		}
		count := func(ctx context.Context) (n int) {
			if err := d.Q(ctx).QueryRowContext(ctx, `SELECT COUNT(*) FROM things`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		rolledBack := errors.New("rolled back")
		err := d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
			if d.Q(ctx) != tx.Tx || other.Q(ctx) != other.DB {
				t.Error("Q inside InTx is not the transaction of its own database only")
			}
			err := d.InTx(ctx, func(ctx context.Context, inner *db.Tx) error {
				if inner != tx {
					t.Error("a nested InTx began a transaction of its own")
				}
				_, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO things (id, name) VALUES ('1', 'a')`)
				return err
			})
			if err != nil {
				return err
			}
			if n := count(ctx); n != 1 {
				t.Errorf("the transaction sees %d of its own rows, want 1", n)
			}
			return rolledBack
		})
		if !errors.Is(err, rolledBack) {
			t.Fatal(err)
		}
		if n := count(ctx); n != 0 {
			t.Fatalf("%d rows after the rollback, want the nested write rolled back too", n)
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
