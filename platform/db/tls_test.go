package db_test

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/testenv"
)

// TestPostgresTLSSettingsReachTheDriver checks that sslmode and sslrootcert
// in database.dsn are the driver's: a missing root certificate stops
// start-up naming database.dsn, sslmode=require encrypts the connection,
// and verify-ca trusts the given root certificate and nothing else. The
// password stays out of every error.
func TestPostgresTLSSettingsReachTheDriver(t *testing.T) {
	base, err := url.Parse(testenv.RequirePostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	base.User = url.UserPassword(base.User.Username(), "s3cret") // ignored under trust auth; must never be shown
	dsn := func(params ...string) string {
		u := *base
		q := u.Query()
		for i := 0; i+1 < len(params); i += 2 {
			q.Set(params[i], params[i+1])
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	config := func(dsn string) db.Config { return db.Config{Driver: db.DriverPostgres, DSN: dsn, MaxOpenConns: 2} }
	ctx := context.Background()

	missing := filepath.Join(t.TempDir(), "missing-ca.pem")
	err = config(dsn("sslmode", "verify-full", "sslrootcert", missing)).Validate()
	if err == nil || !strings.Contains(err.Error(), "database.dsn: ") || !strings.Contains(err.Error(), missing) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("a missing sslrootcert: %v; want database.dsn and the file named, the password not", err)
	}

	d, err := db.Open(ctx, config(dsn("sslmode", "require")))
	if err != nil && strings.Contains(err.Error(), "server refused TLS connection") {
		testenv.Unavailable(t, "PostgreSQL at %s does not offer TLS (ssl = off), so sslmode has nothing to negotiate", base.Host)
	}
	if err != nil {
		t.Fatal(err)
	}
	var encrypted bool
	err = d.QueryRowContext(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&encrypted)
	_ = d.Close()
	if err != nil || !encrypted {
		t.Fatalf("sslmode=require: connection encrypted = %v, %v", encrypted, err)
	}

	// The server's certificate is not this throwaway CA's: verify-ca must
	// refuse it, which it can only do by reading sslrootcert.
	files := testenv.NewTLSFiles(t)
	_, err = db.Open(ctx, config(dsn("sslmode", "verify-ca", "sslrootcert", files.CA)))
	if err == nil || !strings.Contains(err.Error(), "x509: certificate signed by unknown authority") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("verify-ca against another CA: %v; want the certificate refused, the password not shown", err)
	}
}
