package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// peakRSS measures the peak resident set size of this process over one row:
// Linux's VmHWM after resetting it through /proc/self/clear_refs. Where that
// is unavailable it samples runtime.MemStats.Sys (what the Go runtime got
// from the OS, an upper bound of the Go heap's share of RSS) and says so.
type peakRSS struct {
	viaHWM bool
	stop   chan struct{}
	done   sync.WaitGroup
	sys    uint64
}

// startPeakRSS frees what earlier rows left behind, then starts measuring.
func startPeakRSS() *peakRSS {
	runtime.GC()
	debug.FreeOSMemory()
	p := &peakRSS{stop: make(chan struct{})}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err == nil {
		if _, err := procStatusKB("/proc/self/status", "VmHWM"); err == nil {
			p.viaHWM = true
			return p
		}
	}
	p.done.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			p.sys = max(p.sys, ms.Sys)
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	})
	return p
}

// rss is a peak resident set size, in bytes, and how it was measured.
type rss struct {
	bytes  uint64
	source string // "" for VmHWM, "Sys" for the runtime's fallback
}

func (r rss) String() string {
	if r.bytes == 0 {
		return "—"
	}
	s := fmt.Sprintf("%.0f MiB", float64(r.bytes)/(1<<20))
	if r.source != "" {
		s += " (" + r.source + ")"
	}
	return s
}

func (p *peakRSS) end() rss {
	if p.viaHWM {
		kb, err := procStatusKB("/proc/self/status", "VmHWM")
		if err == nil {
			return rss{bytes: kb << 10}
		}
	}
	close(p.stop)
	p.done.Wait()
	return rss{bytes: p.sys, source: "Sys"}
}

// procStatusKB reads one "Key:   123 kB" line of a /proc/<pid>/status file.
func procStatusKB(path, key string) (uint64, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: a /proc status file this program names
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}
