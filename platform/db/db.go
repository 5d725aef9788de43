// Package db opens the application's database — embedded SQLite by default,
// PostgreSQL in production — applies each context's embedded migrations and
// runs transactions. Contexts reach their tables only through the
// sqlc-generated code in their own store package, over [DB.Q], so every
// query joins the transaction the context carries:
//
//	c, err := store.New(s.db.Q(ctx)).GetCustomer(ctx, id)
//
//	err := s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
//		if err := store.New(s.db.Q(ctx)).CreateUser(ctx, params); err != nil {
//			return err
//		}
//		return bus.Publish(ctx, outbox.Publisher(tx), topics.UserRegistered, id, payload)
//	})
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
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/example/monolith/platform/config"
	"github.com/example/monolith/platform/telemetry"
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
	} else if c.Driver == DriverPostgres {
		// Parsing reads the files sslrootcert, sslcert and sslkey name, so
		// a wrong path stops every command here, naming the key.
		if _, err := pgconn.ParseConfig(c.DSN); err != nil {
			errs = append(errs, fmt.Errorf("database.dsn: %s: %s", config.Redact(c.DSN), parseReason(err)))
		}
	}
	if c.MaxOpenConns < 1 {
		errs = append(errs, fmt.Errorf("database.max_open_conns: must be >= 1, got %d", c.MaxOpenConns))
	}
	return errors.Join(errs...)
}

// DB is an open database and the driver it speaks. Its *sql.DB methods use
// the pool and never join a transaction; use cases query through Q.
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
			if err := os.MkdirAll(dir, 0o750); err != nil {
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

// parseReason is why pgconn could not parse a DSN, without the DSN it
// quotes: pgconn masks a URL's password there, but not an sslpassword.
func parseReason(err error) string {
	reason := err.Error()
	if _, ok := errors.AsType[*pgconn.ParseConfigError](err); ok {
		if _, after, found := strings.Cut(reason, "`: "); found {
			reason = after
		}
	}
	return config.Redact(reason)
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

// Querier is what sqlc's generated store.New takes: the pool or a
// transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// txKey holds the transaction InTx runs on; keyed by database so a
// transaction is only ever joined by calls on the database it belongs to.
type txKey struct{ db *DB }

// Q is what a use case runs every query on, in or out of a transaction:
// store.New(s.db.Q(ctx)). Inside InTx (given its ctx) it is that
// transaction, so reads see the transaction's own writes and, on SQLite's
// one connection, do not wait for the connection the transaction holds;
// elsewhere it is the pool.
func (db *DB) Q(ctx context.Context) Querier {
	if tx, ok := ctx.Value(txKey{db}).(*Tx); ok {
		return tx.Tx
	}
	return db.DB
}

// InTx runs fn in a transaction, committed when fn returns nil and rolled
// back otherwise. fn's ctx carries the transaction: Q and InTx called with it
// join the transaction, which only the outermost InTx commits or rolls back,
// so a use case called from inside another's transaction (an idempotent
// event handler's, say) reads and writes in it.
//
// Within a trace (ctx carries a span: a request's, a handler's), the
// transaction is a span of its own, the parent of what runs in it; a
// transaction outside one (start-up, a command) starts no trace.
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) (err error) {
	if tx, ok := ctx.Value(txKey{db}).(*Tx); ok {
		return fn(ctx, tx)
	}
	if trace.SpanContextFromContext(ctx).IsValid() {
		var span trace.Span
		ctx, span = otel.Tracer(tracerName).Start(ctx, "transaction", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(db.systemName()))
		defer func() { telemetry.End(span, err) }()
	}
	sqlTx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("database: begin: %w", err)
	}
	tx := &Tx{Tx: sqlTx, Driver: db.Driver}
	if err := fn(context.WithValue(ctx, txKey{db}, tx), tx); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("database: commit: %w", err)
	}
	return nil
}

// tracerName is the instrumentation scope of the transaction spans.
const tracerName = "github.com/example/monolith/platform/db"

// systemName is db.system.name of the semantic conventions.
func (db *DB) systemName() attribute.KeyValue {
	if db.Driver == DriverPostgres {
		return semconv.DBSystemNamePostgreSQL
	}
	return semconv.DBSystemNameSQLite
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
