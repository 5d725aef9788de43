package db

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// migrationLock is the PostgreSQL advisory lock key migrations hold.
const migrationLock = 7_243_001

// Migrations are one context's schema changes: numbered .sql files
// (001_create_users.sql, ...) applied in name order, each once, each in its
// own transaction. The same files are the schema sqlc generates from, so they
// use SQL that SQLite and PostgreSQL both accept.
type Migrations struct {
	Context string
	// FS holds the .sql files, in any directory (typically an embed.FS of
	// migrations/*.sql); their base names must be unique.
	FS fs.FS
}

// Migrate applies what is not applied yet, for every context in order.
// Instances starting together against one PostgreSQL database take turns.
func (db *DB) Migrate(ctx context.Context, sets ...Migrations) error {
	if db.Driver == DriverPostgres {
		conn, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer func() { _ = conn.Close() }()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
		}()
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		context TEXT NOT NULL,
		name TEXT NOT NULL,
		applied_at TIMESTAMP NOT NULL,
		PRIMARY KEY (context, name))`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	for _, set := range sets {
		if err := db.migrate(ctx, set); err != nil {
			return fmt.Errorf("migrate %s: %w", set.Context, err)
		}
	}
	return nil
}

func (db *DB) migrate(ctx context.Context, set Migrations) error {
	var files []string
	err := fs.WalkDir(set.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path.Ext(p) == ".sql" {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	slices.SortFunc(files, func(a, b string) int { return strings.Compare(path.Base(a), path.Base(b)) })
	for _, file := range files {
		name := path.Base(file)
		body, err := fs.ReadFile(set.FS, file)
		if err != nil {
			return err
		}
		err = db.InTx(ctx, func(ctx context.Context, tx *Tx) error {
			var done int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE context = $1 AND name = $2`,
				set.Context, name).Scan(&done); err != nil || done > 0 {
				return err
			}
			// Both drivers run a multi-statement string sent without arguments.
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", path.Join(set.Context, name), err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (context, name, applied_at) VALUES ($1, $2, $3)`,
				set.Context, name, Now())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
