package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestTableHasEveryInProcessRow runs the program on what needs no service
// (gochannel, the relay and the real path on SQLite) with a handful of
// events, and checks the table's shape: every row present, with events
// handled. Rates are not compared with anything: this keeps the program
// from rotting, it does not benchmark.
func TestTableHasEveryInProcessRow(t *testing.T) {
	var out, progress bytes.Buffer
	err := run(context.Background(), []string{
		"-adapter", "gochannel,discard,none",
		"-row", "bus,watermill,raw,router,flood,sleep5ms,fanout16,relay,realpath,ceiling",
		"-db", "sqlite", "-payload", "256", "-c", "1,4,32",
		"-n", "200", "-half", "50ms", "-flood-n", "500", "-sleep-n", "2", "-publishers", "2",
	}, &out, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	table := out.String()
	want := map[string]bool{
		"gochannel | bus | 256 B | 1":             false,
		"gochannel | bus | 256 B | 4":             false,
		"gochannel | watermill | 256 B | 1":       false,
		"gochannel | raw | 256 B | 1":             false,
		"gochannel | router | 256 B | 1":          false,
		"gochannel | flood | 256 B | 1":           false,
		"gochannel | sleep5ms | 256 B | 32":       false,
		"gochannel | fanout16 | 256 B | 1":        false,
		"discard | relay sqlite | 256 B | 1":      false,
		"gochannel | relay sqlite | 256 B | 4":    false,
		"none | ceiling sqlite | 256 B | 4":       false,
		"gochannel | realpath sqlite | 256 B | 4": false,
	}
	for line := range strings.Lines(table) {
		cols := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		if len(cols) < 14 {
			continue
		}
		key := strings.Join(cols[:4], " | ")
		if _, ok := want[key]; !ok {
			continue
		}
		want[key] = true
		if handled := cols[7]; handled == "0" || handled == "—" {
			t.Errorf("row %s handled %q events/s, want a rate", key, handled)
		}
		if ratios := cols[len(cols)-1]; strings.HasPrefix(ratios, "failed") {
			t.Errorf("row %s %s", key, ratios)
		}
	}
	for key, seen := range want {
		if !seen {
			t.Errorf("no row %s in\n%s", key, table)
		}
	}
	for _, s := range []string{"| target |", "Go: go", "wall time:"} {
		if !strings.Contains(table, s) {
			t.Errorf("output lacks %q:\n%s", s, table)
		}
	}
}

// TestHistogramQuantiles checks the buckets: a quantile is within 1/32 of
// the value recorded, and the maximum is exact.
func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := int64(1); i <= 1000; i++ {
		h.record(timeUs(i))
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 500}, {0.99, 990}, {1, 1000}} {
		got := h.quantile(c.q)
		if diff := float64(got-timeUs(c.want)) / float64(timeUs(c.want)); diff > 1.0/32 || diff < -1.0/32 {
			t.Errorf("quantile(%g) = %s, want %s within 3%%", c.q, got, timeUs(c.want))
		}
	}
	if got := h.latencies().max; got != timeUs(1000) {
		t.Errorf("max = %s, want 1ms", got)
	}
	for i := range 40 * subBuckets {
		if b := bucketOf(lowOf(i)); b != i {
			t.Fatalf("bucketOf(lowOf(%d)) = %d", i, b)
		}
	}
}

func TestSentOfReadsAppendBody(t *testing.T) {
	body := appendBody(nil, 256, 1_700_000_000_123_456_789)
	if len(body) != 256 {
		t.Errorf("body is %d bytes, want 256", len(body))
	}
	if got := sentOf(body); got != 1_700_000_000_123_456_789 {
		t.Errorf("sentOf = %d", got)
	}
}

func timeUs(n int64) time.Duration { return time.Duration(n) * time.Microsecond }
