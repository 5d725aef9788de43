package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// idleRSS builds cmd/app, starts it on configs/app.yaml (gochannel, SQLite)
// in a temporary directory, waits until /readyz answers 200 and two more
// seconds, and reads its VmRSS.
func idleRSS(ctx context.Context, e *env) (rss, error) {
	if e.root == "" {
		return rss{}, errors.New("module root not found: run from the repository")
	}
	dir, err := os.MkdirTemp("", "busbench-app-")
	if err != nil {
		return rss{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bin := filepath.Join(dir, "app")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/app") //nolint:gosec // G204: builds this repository's cmd/app into a directory of its own
	build.Dir = e.root
	if out, err := build.CombinedOutput(); err != nil {
		return rss{}, fmt.Errorf("go build ./cmd/app: %w\n%s", err, out)
	}
	config, err := os.ReadFile(filepath.Join(e.root, "configs", "app.yaml"))
	if err != nil {
		return rss{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), config, 0o600); err != nil { //nolint:gosec // G703: a file in the temporary directory this function made
		return rss{}, err
	}
	addr, err := freeAddr()
	if err != nil {
		return rss{}, err
	}
	// configs/app.yaml reads http.addr from HTTP_ADDR and keeps its SQLite
	// file under data/, relative to the working directory.
	app := exec.CommandContext(ctx, bin, "--config", "app.yaml") //nolint:gosec // G204: the binary this function just built
	app.Dir = dir
	app.Env = append(os.Environ(), "HTTP_ADDR="+addr)
	if err := app.Start(); err != nil {
		return rss{}, err
	}
	var waitErr error
	exited := make(chan struct{}) // closed once the app exited; then waitErr is set
	go func() { waitErr = app.Wait(); close(exited) }()
	defer func() {
		_ = app.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = app.Process.Kill()
			<-exited
		}
	}()
	if err := waitReady(ctx, "http://"+addr+"/readyz", exited); err != nil {
		select {
		case <-exited:
			err = fmt.Errorf("%w: %w", err, waitErr)
		default:
		}
		return rss{}, err
	}
	time.Sleep(2 * time.Second)
	kb, err := procStatusKB("/proc/"+strconv.Itoa(app.Process.Pid)+"/status", "VmRSS")
	if err != nil {
		return rss{}, err
	}
	return rss{bytes: kb << 10, source: "VmRSS"}, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("app exited before it was ready")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer 200 within 30s", url)
}
