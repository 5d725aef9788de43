// Package apptest runs the real binary for end-to-end and fault tests:
// builds it, starts instances on free ports, talks to them over HTTP.
package apptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is the path of the built app; Main sets it.
var Binary string

// Main builds ./cmd/app (the tests run from a directory one level below the
// repository root), runs the tests and cleans up: call it from TestMain.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "apptest")
	if err != nil {
		panic(err)
	}
	Binary = filepath.Join(dir, "app")
	if out, err := exec.Command("go", "build", "-o", Binary, "../cmd/app").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build app: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// Instance is one running app process.
type Instance struct {
	// URL is the public listener's (http.addr).
	URL string
	// AdminURL is the admin listener's (admin.addr).
	AdminURL string
	// Token is sent as "Authorization: Bearer <Token>" when set.
	Token string
	Cmd   *exec.Cmd
	Logs  *SyncBuffer
	// adminToken is the APP_ADMIN_TOKEN the instance was started with.
	adminToken string
	done       chan error
}

// Start runs the binary on the configuration file (an absolute path, or one
// from the repository root) with extra environment, waits until it is ready, and stops it with SIGTERM
// at the end of the test, checking it exits 0. The public and the admin
// listener get free ports on 127.0.0.1 unless env sets APP_ADMIN_ADDR.
func Start(t *testing.T, config string, env ...string) *Instance {
	t.Helper()
	addrs := FreeAddrs(t, 2)
	addr, adminAddr := addrs[0], addrs[1]
	var adminToken string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "APP_ADMIN_ADDR="); ok {
			adminAddr = v
		}
		if v, ok := strings.CutPrefix(kv, "APP_ADMIN_TOKEN="); ok {
			adminToken = v
		}
	}
	if !filepath.IsAbs(config) {
		config = filepath.Join("..", config)
	}
	cmd := exec.Command(Binary, "--config", config)
	cmd.Env = append(os.Environ(), append([]string{"APP_HTTP_ADDR=" + addr, "APP_ADMIN_ADDR=" + adminAddr, "APP_LOG_FORMAT=text"}, env...)...)
	logs := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in := &Instance{URL: "http://" + addr, AdminURL: "http://" + adminAddr, Cmd: cmd, Logs: logs, adminToken: adminToken, done: make(chan error, 1)}
	go func() { in.done <- cmd.Wait() }()
	t.Cleanup(func() { in.Stop(t) })

	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(in.URL + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		select {
		case err := <-in.done:
			in.done <- err
			t.Fatalf("app exited before it was ready: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("app not ready after 60s:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FreeAddrs is n distinct addresses on 127.0.0.1 whose ports were free a
// moment ago. The listeners stay open until all n are taken: closed one by
// one, the kernel may hand the same port out twice.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ln.Close() }()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// Admin is the instance seen through its admin listener: Do, Try and
// Expect send there, with the APP_ADMIN_TOKEN the instance was started
// with, if any. Stop and Kill act on the process as on the instance.
func (in *Instance) Admin() *Instance {
	return &Instance{URL: in.AdminURL, AdminURL: in.AdminURL, Token: in.adminToken, Cmd: in.Cmd, Logs: in.Logs, adminToken: in.adminToken, done: in.done}
}

// WithToken is the instance sending token as its bearer token ("": none).
func (in *Instance) WithToken(token string) *Instance {
	c := *in
	c.Token = token
	return &c
}

// Stop sends SIGTERM and checks the app exits 0 within a minute; it does
// nothing when the process already ended.
func (in *Instance) Stop(t *testing.T) {
	if in.exited() {
		return
	}
	_ = in.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.done:
		in.done <- err
		if err != nil {
			t.Errorf("app did not exit cleanly on SIGTERM: %v\n%s", err, in.Logs)
		}
	case <-time.After(60 * time.Second):
		_ = in.Cmd.Process.Kill()
		t.Errorf("app did not stop within 60s of SIGTERM\n%s", in.Logs)
	}
}

// Kill ends the process with SIGKILL: no drain, no flush.
func (in *Instance) Kill(*testing.T) {
	_ = in.Cmd.Process.Kill()
	err := <-in.done
	in.done <- err
}

func (in *Instance) exited() bool {
	select {
	case err := <-in.done:
		in.done <- err
		return true
	default:
		return false
	}
}

// Response is a decoded JSON reply.
type Response struct {
	Status int
	Body   map[string]any
	Raw    string
}

// Str is a string field of the body.
func (r Response) Str(key string) string { s, _ := r.Body[key].(string); return s }

// ErrorCode is error.code of an error body.
func (r Response) ErrorCode() string {
	e, _ := r.Body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// Do sends a request; body is nil, a string or []byte sent as is, or a
// value sent as JSON. A transport error fails the test.
func (in *Instance) Do(t *testing.T, method, path string, body any) Response {
	t.Helper()
	r, err := in.Try(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// Try is Do returning the transport error (the instance may be down).
func (in *Instance) Try(method, path string, body any) (Response, error) {
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, in.URL+path, reader)
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if in.Token != "" {
		req.Header.Set("Authorization", "Bearer "+in.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r, nil
}

var client = &http.Client{Timeout: 30 * time.Second}

// Expect is Do that fails the test unless the reply has status.
func (in *Instance) Expect(t *testing.T, status int, method, path string, body any) Response {
	t.Helper()
	r := in.Do(t, method, path, body)
	if r.Status != status {
		t.Fatalf("%s %s on %s = %d %s, want %d", method, path, in.URL, r.Status, r.Raw, status)
	}
	return r
}

// Eventually polls cond for up to 30s.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RandomID is 10 random hex digits, for names unique to a run.
func RandomID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SyncBuffer collects a process's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
