package e2e_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/example/monolith/internal/apptest"
)

func TestMigrateCommandNeedsNoBroker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	// The broker address is unreachable: migrate must not touch it.
	cmd := exec.Command(apptest.Binary, "--config", "../configs/app.yaml", "migrate")
	cmd.Env = append(os.Environ(), "APP_DATABASE_DSN="+path, "APP_BUS_ADAPTER=amqp", "APP_BUS_AMQP_URL=amqp://guest:guest@127.0.0.1:1/")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("app migrate: %v\n%s", err, out)
	}
	d, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	// Every store with migrations, discovered: the contexts' and the platform's.
	dirs, err := filepath.Glob("../*/*/internal/store/migrations")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, dir := range dirs {
		want = append(want, filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(dir)))))
	}
	slices.Sort(want)
	var got []string
	rows, err := d.Query(`SELECT DISTINCT context FROM schema_migrations ORDER BY context`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if err := rows.Err(); err != nil || len(want) < 2 || !slices.Equal(got, want) {
		t.Fatalf("migrated %v, %v; want every store with migrations: %v", got, err, want)
	}
}

func TestBadConfigurationStopsStartUpNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	// Each command builds the graph with the contexts, so each must refuse
	// a bad context section, not only serve.
	every := []string{"serve", "migrate", "poison list", "catalog", "stats"}
	tests := []struct {
		name, yaml string
		env        []string
		want       string
		commands   []string
	}{
		{"unknown key", "bus:\n  adapter: amqp\n  amqp:\n    ulr: amqp://x\n", nil, `unknown key "bus.amqp.ulr"`, every},
		{"unknown adapter", "bus:\n  adapter: kafka\n", nil, `bus.adapter: unknown adapter "kafka"`, every},
		{"malformed duration", "bus:\n  close_timeout: soon\n", nil, `bus.close_timeout: invalid duration "soon"`, every},
		{"missing url", "bus:\n  adapter: amqp\n  amqp:\n    url: \"\"\n", nil, "bus.amqp.url: required", every},
		{"bad env override", "", []string{"APP_HTTP_SHUTDOWN_TIMEOUT=later"}, "APP_HTTP_SHUTDOWN_TIMEOUT (http.shutdown_timeout)", every},
		{"admin beyond loopback without a token", "admin:\n  addr: 0.0.0.0:9090\n", nil,
			`admin.addr: "0.0.0.0:9090" is not a loopback address and admin.token is empty`, every},
		{"admin on every interface from the environment, without a token", "", []string{"APP_ADMIN_ADDR=:9090"},
			`admin.addr: ":9090" is not a loopback address and admin.token is empty: the ops API and /metrics would be open to anyone who reaches it; set admin.token (APP_ADMIN_TOKEN)`, every},
		{"admin sharing the public port", "http:\n  addr: :8080\nadmin:\n  addr: 127.0.0.1:8080\n", nil,
			`admin.addr: "127.0.0.1:8080" would share a port with http.addr ":8080"`, every},
		{"unreadable TLS CA file", "bus:\n  adapter: redisstream\n  redisstream:\n    tls:\n      enabled: true\n      ca_file: /nonexistent/ca.pem\n", nil,
			"bus.redisstream.tls.ca_file: open /nonexistent/ca.pem", every},
		{"unreadable sslrootcert", "", []string{"APP_DATABASE_DRIVER=postgres", "APP_DATABASE_DSN=postgres://app:s3cret@127.0.0.1:1/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"},
			"database.dsn: postgres://app:xxxxx@127.0.0.1:1/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem: failed to configure TLS (unable to read CA file: open /nonexistent/ca.pem", every},
		{"unreachable broker", "bus:\n  adapter: redisstream\n  connect_timeout: 500ms\n  redisstream:\n    addr: 127.0.0.1:1\n",
			nil, "bus: cannot connect to redis 127.0.0.1:1", []string{"serve"}},
		{"unknown key in a context section", "contexts:\n  identity:\n    bcrypt_cots: 4\n", nil,
			`config: unknown key "contexts.identity.bcrypt_cots" (line 3)`, every},
		{"unclaimed context section", "contexts:\n  identity:\n    bcrypt_cost: 4\n  billin:\n    plan: free\n", nil,
			`config: unknown key "contexts.billin" (line 4)`, every},
		{"invalid value in a context section", "contexts:\n  identity:\n    bcrypt_cost: 2\n", nil,
			"config: contexts.identity.bcrypt_cost: must be 4 to 31, got 2", every},
		{"malformed context env override", "", []string{"APP_CONTEXTS_IDENTITY_BCRYPT_COST=lots"},
			`config: APP_CONTEXTS_IDENTITY_BCRYPT_COST (contexts.identity.bcrypt_cost): invalid integer "lots"`, every},
		{"invalid context env override", "contexts:\n  identity:\n    bcrypt_cost: 12\n", []string{"APP_CONTEXTS_IDENTITY_BCRYPT_COST=32"},
			"config: contexts.identity.bcrypt_cost: must be 4 to 31, got 32", every},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, "config"+string(rune('a'+i))+".yaml")
		if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, command := range tt.commands {
			t.Run(tt.name+"/"+command, func(t *testing.T) {
				// A start-up that wrongly succeeds is killed, not waited for.
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, apptest.Binary, append([]string{"--config", path}, strings.Fields(command)...)...)
				cmd.Env = append(os.Environ(), append([]string{"APP_DATABASE_DSN=" + filepath.Join(dir, "app.db")}, tt.env...)...)
				out, err := cmd.CombinedOutput()
				if err == nil {
					t.Fatalf("app %s started with a bad configuration:\n%s", command, out)
				}
				if !strings.Contains(string(out), tt.want) {
					t.Fatalf("output does not name the problem %q:\n%s", tt.want, out)
				}
				if strings.Contains(string(out), "s3cret") {
					t.Fatalf("output shows a password:\n%s", out)
				}
			})
		}
	}
}
