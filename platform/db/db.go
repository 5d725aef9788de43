// Package db opens the application's database — embedded SQLite by default,
// PostgreSQL in production — applies each context's embedded migrations and
// runs transactions. Contexts reach their tables only through the
// sqlc-generated code in their own store package.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/example/monolith/platform/config"
)

// Drivers, chosen by database.driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config is the database section of the configuration file.
type Config struct {
	// Driver is sqlite (embedded, pure Go) or postgres.
	Driver string `yaml:"driver"`
	// DSN is a file path for sqlite, a URL or key=value string for postgres.
	DSN string `yaml:"dsn"`
	// MaxOpenConns caps the postgres pool (sqlite always uses one connection).
	MaxOpenConns int `yaml:"max_open_conns"`
}

// DefaultConfig is the zero-setup database: SQLite under ./data.
func DefaultConfig() Config {
	return Config{Driver: DriverSQLite, DSN: "data/app.db", MaxOpenConns: 20}
}

// Validate reports invalid keys by their path in the file.
func (c Config) Validate() error {
	var errs []error
	switch c.Driver {
	case DriverSQLite, DriverPostgres:
	default:
		errs = append(errs, fmt.Errorf("database.driver: unknown driver %q (want sqlite or postgres)", c.Driver))
	}
	if c.DSN == "" {
		errs = append(errs, errors.New("database.dsn: required"))
	}
	if c.MaxOpenConns < 1 {
		errs = append(errs, fmt.Errorf("database.max_open_conns: must be >= 1, got %d", c.MaxOpenConns))
	}
	return errors.Join(errs...)
}

// DB is an open database and the driver it speaks.
type DB struct {
	*sql.DB
	Driver string
}

// Open connects and checks the connection.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var (
		sqlDB *sql.DB
		err   error
	)
	switch cfg.Driver {
	case DriverSQLite:
		if dir := filepath.Dir(cfg.DSN); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("database: create %s: %w", dir, err)
			}
		}
		sqlDB, err = sql.Open("sqlite", sqliteDSN(cfg.DSN))
		// One connection: SQLite allows one writer at a time, and a single
		// connection turns lock contention into queueing instead of
		// SQLITE_BUSY errors.
		sqlDB.SetMaxOpenConns(1)
	case DriverPostgres:
		sqlDB, err = sql.Open("pgx", cfg.DSN)
		sqlDB.SetMaxOpenConns(cfg.MaxOpenConns)
	}
	if err != nil {
		return nil, fmt.Errorf("database: open %s: %w", cfg.Driver, err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("database: connect to %s %s: %w", cfg.Driver, config.Redact(cfg.DSN), err)
	}
	return &DB{DB: sqlDB, Driver: cfg.Driver}, nil
}

func sqliteDSN(path string) string {
	if strings.HasPrefix(path, "file:") {
		return path
	}
	return "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
}

// Now is the current time in UTC at the precision both databases store
// (PostgreSQL keeps microseconds), so what a use case returns equals what is
// read back later.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Tx is a transaction and the driver it runs on.
type Tx struct {
	*sql.Tx
	Driver string
}

type txKey struct{}

// WithTx makes InTx calls with the returned context join tx instead of
// beginning their own: an idempotent handler runs the use case's writes in
// the transaction that records the event as processed.
func WithTx(ctx context.Context, tx *Tx) context.Context {
	return context.WithValue(ctx, txKey{}, tx)
}

// InTx runs fn in a transaction, committed when fn returns nil and rolled
// back otherwise. Inside a context from WithTx it joins that transaction,
// which its owner commits.
func (db *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	if tx, ok := ctx.Value(txKey{}).(*Tx); ok {
		return fn(tx)
	}
	sqlTx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("database: begin: %w", err)
	}
	if err := fn(&Tx{Tx: sqlTx, Driver: db.Driver}); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("database: commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique constraint violation,
// on either driver.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
