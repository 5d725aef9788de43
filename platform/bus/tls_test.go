package bus_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/testenv"
)

// TestRedisStreamTLS runs the redisstream adapter against a redis-server
// of the test's own that speaks only TLS and requires a client
// certificate, all issued by a throwaway CA.
func TestRedisStreamTLS(t *testing.T) {
	files := testenv.NewTLSFiles(t)
	addr := startRedisTLS(t, files)
	config := func(tls bus.TLSConfig) bus.Config {
		cfg := bus.DefaultConfig()
		cfg.Adapter = bus.AdapterRedisStream
		cfg.Redis.Addr = addr
		cfg.Redis.TLS = tls
		cfg.ConnectTimeout = 500 * time.Millisecond
		return cfg
	}
	mutual := bus.TLSConfig{Enabled: true, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}

	t.Run("events flow", func(t *testing.T) {
		cfg := config(mutual)
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		b, err := bus.New(context.Background(), cfg, bus.Options{Logger: slog.New(slog.NewTextHandler(testenv.Output(t), &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = b.Close() }()
		got := make(chan string, 1)
		if err := b.Register(bus.NewHandler("test.greet-over-tls", greeted, func(_ context.Context, e bus.Event[greeting]) error {
			got <- e.Payload.Text
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := b.Check(context.Background()); err != nil {
			t.Fatalf("readiness over TLS: %v", err)
		}
		if err := bus.Publish(context.Background(), b, greeted, "g-1", greeting{Text: "hello over TLS"}); err != nil {
			t.Fatal(err)
		}
		select {
		case text := <-got:
			if text != "hello over TLS" {
				t.Fatalf("handled %q", text)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the event published over TLS was not handled within 10s")
		}
	})

	other := testenv.NewTLSFiles(t)
	for _, tt := range []struct {
		name string
		tls  bus.TLSConfig
		want string
	}{
		{"without TLS", bus.TLSConfig{}, "cannot connect to redis"},
		{"trusting another CA", bus.TLSConfig{Enabled: true, CAFile: other.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}, "certificate signed by unknown authority"},
		// The server refuses these: a TLS alert or a reset, depending on timing.
		{"without a client certificate", bus.TLSConfig{Enabled: true, CAFile: files.CA}, "cannot connect to redis"},
		{"with another CA's client certificate", bus.TLSConfig{Enabled: true, CAFile: files.CA, CertFile: other.ClientCert, KeyFile: other.ClientKey}, "cannot connect to redis"},
		{"expecting another server name", bus.TLSConfig{Enabled: true, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey, ServerName: "redis.example.com"}, "redis.example.com"},
	} {
		t.Run("refused "+tt.name, func(t *testing.T) {
			b, err := bus.New(context.Background(), config(tt.tls), bus.Options{Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				_ = b.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
			t.Log(err)
		})
	}
}

// TestAMQPSUsesTheTLSSection points the amqp adapter at a TLS server of the
// test's own that requires a client certificate of a throwaway CA: with
// bus.amqp.tls naming that CA and a client certificate the handshake
// completes (the server is no broker, so the connection then fails);
// trusting another CA, it does not.
func TestAMQPSUsesTheTLSSection(t *testing.T) {
	files := testenv.NewTLSFiles(t)
	serverCert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(caPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientCAs: clientCAs,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	clients := make(chan string, 100) // the client certificate of each completed handshake
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			tc := conn.(*tls.Conn)
			if tc.Handshake() == nil {
				select {
				case clients <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName:
				default:
				}
			}
			_ = conn.Close()
		}
	}()

	connect := func(tlsCfg bus.TLSConfig) error {
		cfg := bus.DefaultConfig()
		cfg.Adapter = bus.AdapterAMQP
		cfg.AMQP.URL = "amqps://guest:s3cret@" + ln.Addr().String() + "/"
		cfg.AMQP.TLS = tlsCfg
		cfg.ConnectTimeout = 300 * time.Millisecond
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		b, err := bus.New(context.Background(), cfg, bus.Options{Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			_ = b.Close()
			t.Fatal("connected to a server that is no broker")
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("the password is in the error: %v", err)
		}
		return err
	}

	other := testenv.NewTLSFiles(t)
	err = connect(bus.TLSConfig{CAFile: other.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey})
	if !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("trusting another CA: %v", err)
	}
	select {
	case cn := <-clients:
		t.Fatalf("a handshake completed (client %q) though the client trusts another CA", cn)
	default:
	}

	t.Log(connect(bus.TLSConfig{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}))
	select {
	case cn := <-clients:
		if cn != "test client" {
			t.Fatalf("the client presented %q, want the configured certificate", cn)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no TLS handshake completed with bus.amqp.tls's CA and client certificate")
	}
}

func TestTLSConfigValidateNamesTheKey(t *testing.T) {
	files := testenv.NewTLSFiles(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		mutate func(*bus.Config)
		want   string // "": valid
	}{
		{func(c *bus.Config) { c.Adapter, c.Redis.TLS = bus.AdapterRedisStream, bus.TLSConfig{Enabled: true} }, ""},
		{func(c *bus.Config) {
			c.Adapter, c.Redis.TLS = bus.AdapterRedisStream, bus.TLSConfig{Enabled: true, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}
		}, ""},
		{func(c *bus.Config) { c.Adapter, c.Redis.TLS = bus.AdapterRedisStream, bus.TLSConfig{CAFile: files.CA} }, "bus.redisstream.tls.enabled: false, but"},
		{func(c *bus.Config) {
			c.Adapter, c.Redis.TLS = bus.AdapterRedisStream, bus.TLSConfig{Enabled: true, CAFile: missing}
		}, "bus.redisstream.tls.ca_file: open " + missing},
		{func(c *bus.Config) {
			c.Adapter, c.Redis.TLS = bus.AdapterRedisStream, bus.TLSConfig{Enabled: true, CAFile: files.ClientKey}
		}, "bus.redisstream.tls.ca_file: no PEM certificate"},
		{func(c *bus.Config) {
			c.Adapter, c.Redis.TLS = bus.AdapterRedisStream, bus.TLSConfig{Enabled: true, CertFile: files.ClientCert}
		}, "bus.redisstream.tls.key_file: required with cert_file"},
		{func(c *bus.Config) {
			c.Adapter, c.Redis.TLS = bus.AdapterRedisStream, bus.TLSConfig{Enabled: true, CertFile: files.ClientCert, KeyFile: files.ServerKey}
		}, "bus.redisstream.tls.cert_file: tls: private key does not match public key"},
		{func(c *bus.Config) { c.Adapter, c.AMQP.URL = bus.AdapterAMQP, "amqps://guest:guest@127.0.0.1:5671/" }, ""},
		{func(c *bus.Config) {
			c.Adapter, c.AMQP.URL, c.AMQP.TLS = bus.AdapterAMQP, "amqps://guest:guest@127.0.0.1:5671/", bus.TLSConfig{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}
		}, ""},
		{func(c *bus.Config) { c.Adapter, c.AMQP.TLS = bus.AdapterAMQP, bus.TLSConfig{CAFile: files.CA} }, "bus.amqp.tls: set, but bus.amqp.url is amqp://: use an amqps:// URL"},
		{func(c *bus.Config) {
			c.Adapter, c.AMQP.URL, c.AMQP.TLS = bus.AdapterAMQP, "amqps://127.0.0.1:5671/?cacertfile="+files.CA, bus.TLSConfig{CAFile: files.CA}
		}, "bus.amqp.tls: set, and bus.amqp.url has cacertfile too"},
		{func(c *bus.Config) {
			c.Adapter, c.AMQP.URL, c.AMQP.TLS = bus.AdapterAMQP, "amqps://127.0.0.1:5671/", bus.TLSConfig{KeyFile: files.ClientKey}
		}, "bus.amqp.tls.cert_file: required with key_file"},
	}
	for i, tt := range tests {
		cfg := bus.DefaultConfig()
		tt.mutate(&cfg)
		err := cfg.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("case %d: Validate() = %v, want %q", i, err, tt.want)
		}
	}
}

// startRedisTLS starts a redis-server that accepts only TLS connections
// with a client certificate of files' CA, and returns its address. A
// redis-server built without TLS cannot serve the test: it skips, or fails
// under REQUIRE_SERVICES=1.
func startRedisTLS(t *testing.T, files testenv.TLSFiles) string {
	t.Helper()
	bin := testenv.RequireCommand(t, "redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", files.ServerCert, "--tls-key-file", files.ServerKey,
		"--tls-ca-cert-file", files.CA, "--tls-auth-clients", "yes",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", logPath)
	out, err := os.Create(logPath + ".out")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = out.Close()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			return addr
		}
		select {
		case <-exited:
			logs := readAll(logPath) + readAll(logPath+".out")
			if withoutTLS(logs) {
				version, _ := exec.Command(bin, "--version").Output()
				testenv.Unavailable(t, "%s has no TLS support (built without BUILD_TLS=yes): %s",
					strings.TrimSpace(string(version)), firstLine(logs, "tls"))
			}
			t.Fatalf("redis-server with TLS exited:\n%s", logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server with TLS not listening on %s after 15s:\n%s", addr, readAll(logPath))
		}
	}
}

// withoutTLS reports whether redis-server's output says it cannot do TLS:
// a build without it rejects the tls-* directives.
func withoutTLS(logs string) bool {
	l := strings.ToLower(logs)
	return strings.Contains(l, "tls") &&
		(strings.Contains(l, "bad directive") || strings.Contains(l, "not supported") || strings.Contains(l, "unknown option"))
}

func firstLine(s, containing string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(strings.ToLower(line), containing) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

func readAll(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
