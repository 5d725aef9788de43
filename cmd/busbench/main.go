// Command busbench measures the event bus against the limits of what it
// runs on, in one run, and prints one Markdown table: for each adapter whose
// service is reachable, the bus end to end, the same adapter's bare
// Watermill publisher and subscriber, the broker's own client with the same
// durability, the outbox relay, and the application's real path beside the
// database's own ceiling for the same writes. docs/benchmarks.md explains
// each row and keeps the last run's table.
//
//	busbench [-adapter gochannel,amqp,...] [-row bus,raw,...] [-db sqlite,postgres] [-payload 256,4k] [-c 1,4]
//	         [-n N | -duration D] [-half D] [-runs K] [-flood-n N]
//
// Rows whose service is unreachable are skipped with a line saying why;
// REQUIRE_SERVICES=1 makes that an error. make bench runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/example/monolith/platform/db"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "busbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("busbench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var (
		adapterFlag = flags.String("adapter", "", "adapters to run, comma-separated: "+strings.Join(adapters, ", ")+" (default all)")
		rowFlag     = flags.String("row", "", "row kinds to run, comma-separated: "+strings.Join(kinds, ", ")+" (default all)")
		dbFlag      = flags.String("db", "", "databases of the relay, realpath and ceiling rows, comma-separated: sqlite, postgres (default both)")
		payloadFlag = flags.String("payload", "", "payload sizes to keep, comma-separated (256, 4k; default all)")
		cFlag       = flags.String("c", "", "handler concurrencies to keep, comma-separated (default all)")
		s           settings
		runs        = flags.Int("runs", 1, "runs per row; each figure is the median over them")
		cpuProfile  = flags.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	)
	flags.IntVar(&s.n, "n", 0, "events per flood; 0: publish for -duration")
	flags.DurationVar(&s.duration, "duration", time.Second, "how long a flood publishes when -n is 0")
	flags.IntVar(&s.maxEvents, "max-events", 200_000, "most events a flood publishes when -n is 0")
	flags.IntVar(&s.floodN, "flood-n", 1_000_000, "events of the flood row")
	flags.DurationVar(&s.floodTime, "flood-time", time.Minute, "most time the flood row publishes, so a slow machine still ends the run")
	flags.DurationVar(&s.half, "half", time.Second, "how long to publish at half the flood's rate (0: skip)")
	flags.IntVar(&s.publishers, "publishers", 8, "publishing goroutines")
	flags.IntVar(&s.sleepN, "sleep-n", 100, "events per handler slot in the sleep5ms and fanout16 rows")
	flags.DurationVar(&s.stall, "stall", 20*time.Second, "fail a row when nothing is handled for this long")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	var f filter
	var err error
	if f.adapters, err = words("adapter", *adapterFlag, adapters); err != nil {
		return err
	}
	if f.kinds, err = words("row", *rowFlag, kinds); err != nil {
		return err
	}
	if f.dbs, err = words("db", *dbFlag, []string{db.DriverSQLite, db.DriverPostgres}); err != nil {
		return err
	}
	if f.payloads, err = sizes("payload", *payloadFlag); err != nil {
		return err
	}
	if f.cs, err = sizes("c", *cFlag); err != nil {
		return err
	}
	for _, p := range f.payloads {
		if p < envelopeBytes {
			return fmt.Errorf("-payload %d: at least %d bytes", p, envelopeBytes)
		}
	}
	if *runs < 1 || s.publishers < 1 || s.sleepN < 1 || s.maxEvents < 1 || s.floodN < 1 || (s.n == 0 && s.duration <= 0) {
		return errors.New("-runs, -publishers, -sleep-n, -max-events, -flood-n and -n or -duration must be positive")
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	start := time.Now()
	e := newEnv()
	e.root = moduleRoot()
	var rows []row
	for _, r := range defaultRows() {
		if f.keep(r) {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return errors.New("no row matches the flags")
	}
	var needed []string
	for _, r := range rows {
		for _, svc := range r.services() {
			if !slices.Contains(needed, svc) {
				needed = append(needed, svc)
			}
		}
	}
	// Every service, for the header; only those the rows need can skip rows.
	e.probe([]string{svcRabbitMQ, svcRedis, svcPostgres, svcNATS})
	var skipped []string
	for _, svc := range needed {
		if err, down := e.down[svc]; down {
			skipped = append(skipped, fmt.Sprintf("skipped: every row on %s: %v", svc, err))
		}
	}
	if len(skipped) > 0 && os.Getenv("REQUIRE_SERVICES") == "1" {
		return fmt.Errorf("REQUIRE_SERVICES=1: %s", strings.Join(skipped, "; "))
	}

	fmt.Fprintln(stdout, "```")
	fmt.Fprintln(stdout, strings.TrimSpace("$ go run ./cmd/busbench "+strings.Join(args, " ")))
	for _, line := range e.header(ctx) {
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "flood: %s, %d publishers; half rate: %s at 0.5× the flood's handled/s; flood row: %s events or %s; runs per row: %d\n",
		floodDesc(s), s.publishers, s.half, fmtCount(s.floodN), s.floodTime, *runs)
	for _, line := range skipped {
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintln(stdout, "```")
	fmt.Fprintln(stdout)

	var rs results
	var notes []string
	for i, r := range rows {
		if slices.ContainsFunc(r.services(), func(svc string) bool { _, down := e.down[svc]; return down }) {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rowStart := time.Now()
		fmt.Fprintf(stderr, "[%d/%d] %s ", i+1, len(rows), r)
		all := make([]result, 0, *runs)
		for range *runs {
			all = append(all, measure(ctx, e, s, r))
		}
		res := median(all)
		rs = append(rs, res)
		if res.err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", r, res.err))
			fmt.Fprintf(stderr, "failed: %v\n", res.err)
			continue
		}
		if r.Kind == kindIdle {
			fmt.Fprintf(stderr, "%s, %s\n", res.rss, time.Since(rowStart).Round(10*time.Millisecond))
			continue
		}
		fmt.Fprintf(stderr, "%s handled/s, %s\n", fmtRate(res.handled), time.Since(rowStart).Round(10*time.Millisecond))
	}
	if err := e.deleteExchange(); err != nil {
		notes = append(notes, "delete exchange "+e.exchange+": "+err.Error())
	}
	if err := e.deleteNATSStream(); err != nil {
		notes = append(notes, "delete NATS stream: "+err.Error())
	}

	writeTable(stdout, rs)
	fmt.Fprintln(stdout)
	writeChecks(stdout, rs, f.selects())
	fmt.Fprintln(stdout)
	for _, n := range notes {
		fmt.Fprintln(stdout, "- failed: "+strings.ReplaceAll(n, "\n", " "))
	}
	fmt.Fprintf(stdout, "wall time: %s\n", time.Since(start).Round(time.Second))
	return nil
}

func floodDesc(s settings) string {
	if s.n > 0 {
		return fmt.Sprintf("%d events per row", s.n)
	}
	return fmt.Sprintf("%s or %d events per row, whichever ends first", s.duration, s.maxEvents)
}

// moduleRoot is the nearest directory up from the working directory with a
// go.mod, or "".
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
