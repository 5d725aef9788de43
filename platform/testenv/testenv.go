// Package testenv locates the real services integration tests talk to and
// decides what happens when one is unreachable: the test is skipped with a
// one-line reason, or fails when REQUIRE_SERVICES=1 (as in CI).
package testenv

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Addresses of the local services, overridable by environment variables.
var (
	AMQPURL     = env("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
	RedisAddr   = env("TEST_REDIS_ADDR", "127.0.0.1:6379")
	NATSAddr    = env("TEST_NATS_ADDR", "127.0.0.1:4222")
	PostgresDSN = env("TEST_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
)

// RequireAMQP makes sure RabbitMQ is reachable, and returns its URL.
func RequireAMQP(t testing.TB) string {
	t.Helper()
	require(t, "RabbitMQ", hostOf(AMQPURL))
	return AMQPURL
}

// RequireNATS makes sure NATS is reachable, and returns its URL.
func RequireNATS(t testing.TB) string {
	t.Helper()
	require(t, "NATS", NATSAddr)
	return "nats://" + NATSAddr
}

// RequireRedis makes sure Redis is reachable, and returns its address.
func RequireRedis(t testing.TB) string {
	t.Helper()
	require(t, "Redis", RedisAddr)
	return RedisAddr
}

// RequirePostgres makes sure PostgreSQL is reachable, and returns its DSN.
func RequirePostgres(t testing.TB) string {
	t.Helper()
	require(t, "PostgreSQL", hostOf(PostgresDSN))
	return PostgresDSN
}

// RabbitMQCtl is rabbitmqctl with args, for tests that manage RabbitMQ
// behind the application's back (vhosts, dropped connections, restarts).
// RABBITMQCTL names the command where RabbitMQ runs elsewhere, as in CI's
// service container ("docker exec ID rabbitmqctl"); unset, it is the
// rabbitmqctl on PATH or, without one, the one in compose.yaml's rabbitmq
// service (make up).
func RabbitMQCtl(args ...string) *exec.Cmd {
	cmd := strings.Fields(os.Getenv("RABBITMQCTL"))
	if len(cmd) == 0 {
		cmd = []string{"rabbitmqctl"}
		if _, err := exec.LookPath("rabbitmqctl"); err != nil {
			cmd = []string{"docker", "compose", "exec", "-T", "rabbitmq", "rabbitmqctl"}
		}
	}
	return exec.Command(cmd[0], append(cmd[1:], args...)...) //nolint:gosec // RABBITMQCTL is set by whoever runs the tests
}

// RequireCommand makes sure the program name, which comes with a service
// (redis-server with Redis), is installed, and returns its path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	Unavailable(t, "%s is not installed: %v", name, err)
	return ""
}

// Unavailable ends a test whose service cannot serve it (not running, or
// without the feature the test needs): a skip with the reason, or a failure
// when REQUIRE_SERVICES=1.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if required() {
		t.Fatalf("%s (REQUIRE_SERVICES=1)", reason)
	}
	t.Skipf("%s (set REQUIRE_SERVICES=1 to fail instead)", reason)
}

// required reports whether unreachable services fail tests instead of skipping them.
func required() bool { return os.Getenv("REQUIRE_SERVICES") == "1" }

func require(t testing.TB, name, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = conn.Close()
		return
	}
	Unavailable(t, "%s unreachable at %s: %v", name, addr, err)
}

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return rawURL
	}
	return u.Host
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Output writes to the test's output until the test ends, then discards:
// adapters' goroutines may log a little after the code under test stopped,
// which t.Output would reject.
func Output(t testing.TB) io.Writer {
	w := &output{out: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.out = nil
	})
	return w
}

type output struct {
	mu  sync.Mutex
	out io.Writer
}

func (w *output) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.out == nil {
		return len(p), nil
	}
	return w.out.Write(p)
}
