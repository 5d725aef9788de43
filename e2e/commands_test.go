package e2e_test

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
	defer d.Close()
	var contexts int
	if err := d.QueryRow(`SELECT COUNT(DISTINCT context) FROM schema_migrations`).Scan(&contexts); err != nil || contexts != 5 {
		t.Fatalf("migrated contexts = %d, %v; want 5 (3 contexts, outbox, poison)", contexts, err)
	}
}

func TestBadConfigurationStopsStartUpNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"unknown key", "bus:\n  adapter: amqp\n  amqp:\n    ulr: amqp://x\n", nil, `unknown key "bus.amqp.ulr"`},
		{"unknown adapter", "bus:\n  adapter: kafka\n", nil, `bus.adapter: unknown adapter "kafka"`},
		{"malformed duration", "bus:\n  close_timeout: soon\n", nil, `bus.close_timeout: invalid duration "soon"`},
		{"missing url", "bus:\n  adapter: amqp\n  amqp:\n    url: \"\"\n", nil, "bus.amqp.url: required"},
		{"bad env override", "", []string{"APP_HTTP_SHUTDOWN_TIMEOUT=later"}, "APP_HTTP_SHUTDOWN_TIMEOUT (http.shutdown_timeout)"},
		{"unreachable broker", "bus:\n  adapter: redisstream\n  connect_timeout: 500ms\n  redisstream:\n    addr: 127.0.0.1:1\n",
			[]string{"APP_DATABASE_DSN=" + filepath.Join(dir, "app.db")}, "bus: cannot connect to redis 127.0.0.1:1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "config"+string(rune('a'+i))+".yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(apptest.Binary, "--config", path)
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("app started with a bad configuration:\n%s", out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output does not name the problem %q:\n%s", tt.want, out)
			}
		})
	}
}
