package main

import (
	"cmp"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
)

// results are one run's rows, in table order.
type results []result

// find returns the successful result of the row matching every field of
// want that is set (Instances 0 means 1).
func (rs results) find(want row) *result {
	if want.Instances == 0 {
		want.Instances = 1
	}
	for i := range rs {
		r := &rs[i]
		if r.err == nil && r.row == want {
			return r
		}
	}
	return nil
}

// ratio is a.handled / b.handled; ok is false when either is missing.
func ratio(a, b *result) (float64, bool) {
	if a == nil || b == nil || b.handled == 0 {
		return 0, false
	}
	return a.handled / b.handled, true
}

// ratios are the comparisons printed beside a row: its handled/s over the
// handled/s of the rows it is held to.
func (rs results) ratios(r result) string {
	if r.err != nil {
		return "failed: " + firstLine(r.err.Error(), 60)
	}
	var out []string
	add := func(label string, ref *result, scale float64) {
		if x, ok := ratio(&r, ref); ok {
			out = append(out, fmt.Sprintf("%.2f× %s", x/scale, label))
		}
	}
	same := r.row
	same.Instances = 1
	with := func(kind string) row { x := same; x.Kind = kind; return x }
	switch w := r.row; w.Kind {
	case kindBus:
		add("watermill", rs.find(with(kindWatermill)), 1)
		add("raw", rs.find(with(kindRaw)), 1)
		if w.Adapter == bus.AdapterGoChannel {
			add("router", rs.find(with(kindRouter)), 1)
		}
	case kindCallers:
		add("bus", rs.find(with(kindBus)), 1)
		add("raw", rs.find(with(kindRaw)), 1)
	case kindWatermill:
		add("raw", rs.find(with(kindRaw)), 1)
	case kindRouter:
		add("watermill", rs.find(with(kindWatermill)), 1)
		add("raw", rs.find(with(kindRaw)), 1)
	case kindFlood:
		add("bus", rs.find(with(kindBus)), 1)
	case kindTwo:
		add("1 instance", rs.find(with(kindBus)), 1)
		add("raw", rs.find(with(kindRaw)), 1)
	case kindSleep:
		one := with(kindSleep)
		one.C = 1
		add("linear", rs.find(one), float64(w.C))
	case kindFanout:
		one := with(kindSleep)
		add("16× one handler", rs.find(one), 16)
	case kindRelay:
		if w.Adapter == bus.AdapterAMQP || w.Adapter == bus.AdapterRedisStream {
			add("raw c=1", rs.find(row{Adapter: w.Adapter, Kind: kindRaw, Payload: w.Payload, C: 1}), 1)
		}
		if w.Adapter != adapterDiscard {
			add("relay→discard", rs.find(row{Adapter: adapterDiscard, Kind: kindRelay, DB: w.DB, Payload: w.Payload, C: 1}), 1)
		}
	case kindDelayed:
		out = append(out, "latencies are after the due time")
	case kindRealPath:
		add("DB ceiling", rs.find(row{Adapter: adapterNone, Kind: kindCeiling, DB: w.DB, Payload: w.Payload, C: w.C}), 1)
	}
	return strings.Join(out, ", ")
}

// writeTable prints the results as one Markdown table.
func writeTable(w io.Writer, rs results) {
	fmt.Fprintln(w, "| adapter | row | payload | c | inst | events | published/s | handled/s | flood p50 / p99 / max (ms) | half rate/s | half-rate p50 / p99 / max (ms) | publishers late p99 (ms) | peak RSS | ratios of handled/s |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rs {
		w0 := r.row
		cols := []string{w0.Adapter, w0.label(), sizeLabel(w0.Payload), strconv.Itoa(w0.C), strconv.Itoa(w0.Instances)}
		switch {
		case w0.Kind == kindIdle:
			cols = append(cols[:2], "—", "—", "1", "—", "—", "—", "—", "—", "—", "—", "idle "+r.rss.String(), "")
			if r.err != nil {
				cols[len(cols)-1] = "failed: " + firstLine(r.err.Error(), 60)
			}
		case r.err != nil && r.handled == 0:
			cols = append(cols, "—", "—", "—", "—", "—", "—", "—", r.rss.String(), rs.ratios(r))
		default:
			flood, half, halfRate, late := "—", "—", "—", "—"
			if r.hasLatency {
				flood = fmtLatencies(r.flood)
			}
			if r.halfRate > 0 {
				half, halfRate, late = fmtLatencies(r.half), fmtRate(r.halfRate), fmtMs(r.halfLate)
			}
			cols = append(cols, fmtCount(r.events), fmtRate(r.published), fmtRate(r.handled), flood, halfRate, half, late, r.rss.String(), rs.ratios(r))
		}
		fmt.Fprintln(w, "| "+strings.Join(cols, " | ")+" |")
	}
}

// check is one target the table lets a reader check.
type check struct {
	name, target string
	// measure returns the measured figure as printed and whether it meets
	// the target; ok is false when a row it needs is missing.
	measure func(rs results) (shown string, met, ok bool)
}

// atLeast checks a ratio of two rows' handled/s against min.
func atLeast(a, b row, scale, limit float64) func(results) (string, bool, bool) {
	return func(rs results) (string, bool, bool) {
		x, ok := ratio(rs.find(a), rs.find(b))
		if !ok {
			return "", false, false
		}
		x /= scale
		return fmt.Sprintf("%.2f×", x), x >= limit, true
	}
}

func checks(rs results) []check {
	const small = 256
	gc, amqp, redis, nats := bus.AdapterGoChannel, bus.AdapterAMQP, bus.AdapterRedisStream, bus.AdapterNATS
	r := func(adapter, kind string, c int) row {
		return row{Adapter: adapter, Kind: kind, Payload: small, C: c, Instances: 1}
	}
	relay := func(adapter, driver string, c int) row {
		return row{Adapter: adapter, Kind: kindRelay, DB: driver, Payload: small, C: c, Instances: 1}
	}
	cs := []check{
		{"gochannel bus / bare Watermill (256 B, c=1)", "≥ 0.60×", atLeast(r(gc, kindBus, 1), r(gc, kindWatermill, 1), 1, 0.6)},
		{"gochannel bus / Watermill router + Retry + Recoverer (256 B, c=1)", "≥ 1.00×", atLeast(r(gc, kindBus, 1), r(gc, kindRouter, 1), 1, 1.0)},
		{"gochannel bus p99 at half the max rate (256 B, c=1)", "< 1 ms", func(rs results) (string, bool, bool) {
			b := rs.find(r(gc, kindBus, 1))
			if b == nil || b.halfRate == 0 {
				return "", false, false
			}
			return fmtMs(b.half.p99) + " ms", b.half.p99 < time.Millisecond, true
		}},
		{floodName(rs), "< 100 MiB", func(rs results) (string, bool, bool) {
			f := rs.find(r(gc, kindFlood, 1))
			if f == nil {
				return "", false, false
			}
			under := f.rss.bytes < 100<<20
			if under && f.events < f.wanted {
				// Cut short by -flood-time: a smaller flood proves nothing.
				return fmt.Sprintf("%s, cut at %s of %s events", f.rss, fmtCount(f.events), fmtCount(f.wanted)), false, false
			}
			return f.rss.String(), under, true
		}},
		{"AMQP bus / raw amqp091-go (256 B, c=4)", "≥ 0.75×", atLeast(r(amqp, kindBus, 4), r(amqp, kindRaw, 4), 1, 0.75)},
		{"AMQP bus / raw amqp091-go (256 B, c=16)", "≥ 0.75×", atLeast(r(amqp, kindBus, 16), r(amqp, kindRaw, 16), 1, 0.75)},
		{"AMQP bus, 64 publishers / raw amqp091-go (256 B, c=4)", "≥ 0.75×", atLeast(r(amqp, kindCallers, 4), r(amqp, kindRaw, 4), 1, 0.75)},
		{"AMQP bus, 64 publishers / raw amqp091-go (256 B, c=16)", "≥ 0.75×", atLeast(r(amqp, kindCallers, 16), r(amqp, kindRaw, 16), 1, 0.75)},
		{"relay PostgreSQL→AMQP / raw amqp091-go (c=1)", "≥ 0.50×", atLeast(relay(amqp, db.DriverPostgres, 4), r(amqp, kindRaw, 1), 1, 0.5)},
		{"Redis bus / raw go-redis pipelined (256 B, c=1)", "≥ 0.35×", atLeast(r(redis, kindBus, 1), r(redis, kindRaw, 1), 1, 0.35)},
		{"relay PostgreSQL→Redis / relay PostgreSQL→discard", "≥ 0.80×", atLeast(relay(redis, db.DriverPostgres, 4), relay(adapterDiscard, db.DriverPostgres, 1), 1, 0.8)},
	}
	for _, rp := range []struct{ adapter, driver string }{{gc, db.DriverSQLite}, {amqp, db.DriverPostgres}, {redis, db.DriverPostgres}, {nats, db.DriverPostgres}} {
		path := row{Adapter: rp.adapter, Kind: kindRealPath, DB: rp.driver, Payload: small, C: 4, Instances: 1}
		ceiling := row{Adapter: adapterNone, Kind: kindCeiling, DB: rp.driver, Payload: small, C: 4, Instances: 1}
		cs = append(cs, check{fmt.Sprintf("real path %s+%s / the database's ceiling", rp.driver, rp.adapter), "≥ 0.50×", atLeast(path, ceiling, 1, 0.5)})
	}
	for _, a := range []string{gc, amqp, redis, nats} {
		cs = append(cs,
			check{a + " sleep5ms c=32 / 32× c=1", "≥ 0.80×", atLeast(r(a, kindSleep, 32), r(a, kindSleep, 1), 32, 0.8)},
			check{a + " fanout16 / 16× one handler", "≥ 0.80×", atLeast(r(a, kindFanout, 1), r(a, kindSleep, 1), 16, 0.8)},
		)
	}
	cs = append(cs, check{"cmd/app idle on configs/app.yaml: VmRSS", "< 40 MiB", func(rs results) (string, bool, bool) {
		for _, x := range rs {
			if x.row.Kind == kindIdle && x.err == nil {
				return x.rss.String(), x.rss.bytes < 40<<20, true
			}
		}
		return "", false, false
	}})
	return cs
}

// floodName names the flood target after the events the row published.
func floodName(rs results) string {
	for _, r := range rs {
		if r.row.Kind == kindFlood && r.events > 0 {
			return fmt.Sprintf("gochannel flood of %s events: peak RSS", fmtCount(r.events))
		}
	}
	return "gochannel flood: peak RSS"
}

// writeChecks prints every target with what this run measured for it; when
// flags selected rows, only the targets those rows measure.
func writeChecks(w io.Writer, rs results, selected bool) {
	fmt.Fprintln(w, "| target | measured | wanted | |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	for _, c := range checks(rs) {
		shown, met, ok := c.measure(rs)
		verdict := "not met"
		switch {
		case !ok && shown == "" && selected:
			continue
		case !ok:
			shown, verdict = cmp.Or(shown, "—"), "not measured"
		case met:
			verdict = "met"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.name, shown, c.target, verdict)
	}
}

func fmtLatencies(l latencies) string {
	return fmtMs(l.p50) + " / " + fmtMs(l.p99) + " / " + fmtMs(l.max)
}

// fmtMs prints d in milliseconds with three significant digits.
func fmtMs(d time.Duration) string {
	ms := d.Seconds() * 1000
	switch {
	case ms < 1:
		return strconv.FormatFloat(ms, 'f', 3, 64)
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64)
	case ms < 100:
		return strconv.FormatFloat(ms, 'f', 1, 64)
	}
	return strconv.FormatFloat(ms, 'f', 0, 64)
}

func fmtRate(x float64) string { return fmtCount(int(x + 0.5)) }

// fmtCount writes n with thousands separators.
func fmtCount(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func firstLine(s string, limit int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strings.ReplaceAll(s, "|", "/")
}
