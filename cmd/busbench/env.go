package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/testenv"
)

// Services a row may need.
const (
	svcRabbitMQ = "RabbitMQ"
	svcRedis    = "Redis"
	svcPostgres = "PostgreSQL"
	svcNATS     = "NATS"
)

// env is what every row shares: where the services are, which are down,
// and the names this run gives what it creates.
type env struct {
	amqpURL, redisAddr, postgresDSN, natsURL string
	// down maps each unreachable service to why.
	down map[string]error
	// runID makes this run's topics, queues, streams, groups and databases
	// its own; exchange is its AMQP exchange.
	runID    string
	exchange string
	seq      atomic.Int64
	// root is the module's directory (the idle row builds cmd/app there).
	root string
}

// The addresses are those of the integration tests (TEST_AMQP_URL,
// TEST_REDIS_ADDR, TEST_POSTGRES_DSN), as make up starts them.
func newEnv() *env {
	id := strings.ToLower(watermill.NewShortUUID()[:6])
	return &env{
		amqpURL:     testenv.AMQPURL,
		redisAddr:   testenv.RedisAddr,
		postgresDSN: testenv.PostgresDSN,
		natsURL:     "nats://" + testenv.NATSAddr,
		down:        map[string]error{},
		runID:       id,
		exchange:    "busbench." + id,
	}
}

// probe dials each service once.
func (e *env) probe(services []string) {
	for _, s := range services {
		addr := map[string]string{svcRabbitMQ: hostOf(e.amqpURL), svcRedis: e.redisAddr, svcPostgres: hostOf(e.postgresDSN), svcNATS: hostOf(e.natsURL)}[s]
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			e.down[s] = fmt.Errorf("%s unreachable at %s: %w", s, addr, err)
			continue
		}
		_ = conn.Close()
	}
}

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return rawURL
	}
	return u.Host
}

// names gives one row's topic and handler names, unique to the run.
type names struct{ topic, handler string }

func (e *env) names(kind string) names {
	n := e.seq.Add(1)
	return names{
		topic:   fmt.Sprintf("busbench.r%s%d.published", e.runID, n),
		handler: fmt.Sprintf("busbench.%s-%s-%d", kind, e.runID, n),
	}
}

// header describes the machine and the services' versions.
func (e *env) header(ctx context.Context) []string {
	lines := []string{
		"date: " + time.Now().UTC().Format("2006-01-02 15:04 MST"),
		fmt.Sprintf("machine: %s, %d cores (runtime.NumCPU), %s", cpuModel(), runtime.NumCPU(), unameR()),
		"Go: " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
	}
	if mods := moduleVersions(); mods != "" {
		lines = append(lines, "modules: "+mods)
	}
	version := func(svc string, get func(context.Context) (string, error)) {
		if err, down := e.down[svc]; down {
			lines = append(lines, err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		v, err := get(ctx)
		if err != nil {
			v = "unknown (" + err.Error() + ")"
		}
		lines = append(lines, svc+": "+v)
	}
	version(svcRabbitMQ, e.rabbitMQVersion)
	version(svcRedis, e.redisVersion)
	version(svcPostgres, e.postgresVersion)
	version(svcNATS, e.natsVersion)
	return lines
}

func (e *env) rabbitMQVersion(context.Context) (string, error) {
	conn, err := amqp091.Dial(e.amqpURL)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	v, _ := conn.Properties["version"].(string)
	return v, nil
}

func (e *env) redisVersion(ctx context.Context) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: e.redisAddr})
	defer func() { _ = c.Close() }()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no redis_version in INFO server")
}

func (e *env) postgresVersion(ctx context.Context) (string, error) {
	conn, err := sql.Open("pgx", e.postgresDSN)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	var v string
	err = conn.QueryRowContext(ctx, "SHOW server_version").Scan(&v)
	return v, err
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func unameR() string {
	out, err := exec.Command("uname", "-srm").Output()
	if err != nil {
		return runtime.GOOS
	}
	return strings.TrimSpace(string(out))
}

// moduleVersions lists the versions of the modules the rows exercise.
func moduleVersions() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var out []string
	for _, m := range info.Deps {
		for _, want := range []string{"watermill", "watermill-amqp/v3", "watermill-redisstream", "watermill-sql/v4", "watermill-nats/v2", "nats.go", "amqp091-go", "go-redis/v9", "pgx/v5", "modernc.org/sqlite"} {
			if strings.HasSuffix(m.Path, "/"+want) || m.Path == want {
				out = append(out, want+" "+m.Version)
			}
		}
	}
	return strings.Join(out, ", ")
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func (e *env) natsVersion(context.Context) (string, error) {
	conn, err := nats.Connect(e.natsURL)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectedServerVersion(), nil
}
