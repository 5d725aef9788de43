package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
)

// Adapters a row runs on: the bus's three, plus two that name no broker.
const (
	adapterDiscard = "discard" // the relay forwards into a counting publisher
	adapterNone    = "none"    // the database alone: the ceiling rows
)

var adapters = []string{bus.AdapterGoChannel, bus.AdapterAMQP, bus.AdapterRedisStream, bus.AdapterNATS, adapterDiscard, adapterNone}

// Kinds of row, the values of -row.
const (
	kindBus       = "bus"       // bus.Publish -> router and middleware -> typed handler
	kindWatermill = "watermill" // the adapter's bare Watermill publisher and subscriber
	kindRaw       = "raw"       // the broker's own client (a Go channel for gochannel)
	kindRouter    = "router"    // message.Router with Retry and Recoverer, no bus (gochannel)
	kindCallers   = "bus64"     // the bus row with 64 publishing goroutines (brokers that confirm each publish)
	kindFlood     = "flood"     // 1,000,000 events through the bus: peak RSS
	kindSleep     = "sleep5ms"  // a handler that waits 5 ms, backlog handled at concurrency c
	kindFanout    = "fanout16"  // 16 such handlers on one topic
	kindTwo       = "2inst"     // two bus instances sharing one handler's queue or group
	kindRelay     = "relay"     // outbox -> relay -> adapter -> handler
	kindRealPath  = "realpath"  // use case -> outbox -> relay -> adapter -> outbox.NewHandler
	kindCeiling   = "ceiling"   // the real path's writes on the database alone
	kindDelayed   = "delayed"   // bus.PublishAt through the outbox, due 1s later: latencies are lateness after due
	kindIdle      = "idle"      // cmd/app started on configs/app.yaml, idle
)

var kinds = []string{kindBus, kindWatermill, kindRaw, kindRouter, kindCallers, kindFlood, kindSleep, kindFanout, kindTwo, kindRelay, kindRealPath, kindCeiling, kindDelayed, kindIdle}

// row is one line of the table: what runs, on which adapter, with which
// payload size, handler concurrency and number of instances.
type row struct {
	Adapter   string
	Kind      string
	DB        string // relay, realpath and ceiling rows
	Payload   int    // bytes of JSON payload
	C         int    // handler concurrency per instance
	Instances int
}

func (r row) label() string {
	if r.Kind == kindIdle {
		return "cmd/app idle"
	}
	if r.DB != "" {
		return r.Kind + " " + r.DB
	}
	return r.Kind
}

func (r row) String() string {
	if r.Kind == kindIdle {
		return r.Adapter + " " + r.label()
	}
	return fmt.Sprintf("%s %s %s c=%d×%d", r.Adapter, r.label(), sizeLabel(r.Payload), r.C, r.Instances)
}

// services the row needs besides this process.
func (r row) services() []string {
	var s []string
	switch r.Adapter {
	case bus.AdapterAMQP:
		s = append(s, svcRabbitMQ)
	case bus.AdapterRedisStream:
		s = append(s, svcRedis)
	case bus.AdapterNATS:
		s = append(s, svcNATS)
	}
	if r.DB == db.DriverPostgres {
		s = append(s, svcPostgres)
	}
	return s
}

func sizeLabel(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return strconv.Itoa(n/1024) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}

// defaultRows is the whole table, adapter by adapter.
func defaultRows() []row {
	const small, large = 256, 4096
	var rows []row
	add := func(r row) {
		if r.Instances == 0 {
			r.Instances = 1
		}
		rows = append(rows, r)
	}
	for _, a := range []string{bus.AdapterGoChannel, bus.AdapterAMQP, bus.AdapterRedisStream, bus.AdapterNATS} {
		for _, k := range []string{kindBus, kindWatermill, kindRaw} {
			for _, c := range []int{1, 4, 16} {
				add(row{Adapter: a, Kind: k, Payload: small, C: c})
			}
			add(row{Adapter: a, Kind: k, Payload: large, C: 1})
		}
		if a == bus.AdapterGoChannel {
			add(row{Adapter: a, Kind: kindRouter, Payload: small, C: 1})
		} else {
			for _, c := range []int{4, 16} {
				add(row{Adapter: a, Kind: kindCallers, Payload: small, C: c})
			}
			for _, c := range []int{1, 4} {
				add(row{Adapter: a, Kind: kindTwo, Payload: small, C: c, Instances: 2})
			}
		}
		for _, c := range []int{1, 4, 16, 32} {
			add(row{Adapter: a, Kind: kindSleep, Payload: small, C: c})
		}
		add(row{Adapter: a, Kind: kindFanout, Payload: small, C: 1})
	}
	// The outbox: SQLite comes with gochannel, PostgreSQL with every adapter,
	// as in configs/*.yaml.
	add(row{Adapter: adapterDiscard, Kind: kindRelay, DB: db.DriverSQLite, Payload: small, C: 1})
	add(row{Adapter: bus.AdapterGoChannel, Kind: kindRelay, DB: db.DriverSQLite, Payload: small, C: 4})
	add(row{Adapter: adapterDiscard, Kind: kindRelay, DB: db.DriverPostgres, Payload: small, C: 1})
	for _, a := range []string{bus.AdapterGoChannel, bus.AdapterAMQP, bus.AdapterRedisStream, bus.AdapterNATS} {
		add(row{Adapter: a, Kind: kindRelay, DB: db.DriverPostgres, Payload: small, C: 4})
	}
	add(row{Adapter: adapterNone, Kind: kindCeiling, DB: db.DriverSQLite, Payload: small, C: 4})
	add(row{Adapter: bus.AdapterGoChannel, Kind: kindRealPath, DB: db.DriverSQLite, Payload: small, C: 4})
	add(row{Adapter: adapterNone, Kind: kindCeiling, DB: db.DriverPostgres, Payload: small, C: 4})
	for _, a := range []string{bus.AdapterAMQP, bus.AdapterRedisStream, bus.AdapterNATS} {
		add(row{Adapter: a, Kind: kindRealPath, DB: db.DriverPostgres, Payload: small, C: 4})
	}
	// Scheduled events, as configs/*.yaml pair the databases and adapters.
	add(row{Adapter: bus.AdapterGoChannel, Kind: kindDelayed, DB: db.DriverSQLite, Payload: small, C: 4})
	for _, a := range []string{bus.AdapterAMQP, bus.AdapterRedisStream, bus.AdapterNATS} {
		add(row{Adapter: a, Kind: kindDelayed, DB: db.DriverPostgres, Payload: small, C: 4})
	}
	// Last but the idle app: the heap a flood leaves behind would count in
	// the next rows' RSS.
	add(row{Adapter: bus.AdapterGoChannel, Kind: kindFlood, Payload: small, C: 1})
	add(row{Adapter: bus.AdapterGoChannel, Kind: kindIdle, DB: db.DriverSQLite})
	return rows
}

// filter keeps the rows every non-empty selection allows.
type filter struct {
	adapters, kinds, dbs []string
	payloads, cs         []int
}

// selects reports whether the flags narrowed the table.
func (f filter) selects() bool {
	return len(f.adapters)+len(f.kinds)+len(f.dbs)+len(f.payloads)+len(f.cs) > 0
}

func (f filter) keep(r row) bool {
	return (len(f.adapters) == 0 || slices.Contains(f.adapters, r.Adapter)) &&
		(len(f.dbs) == 0 || r.DB == "" || r.Kind == kindIdle || slices.Contains(f.dbs, r.DB)) &&
		(len(f.kinds) == 0 || slices.Contains(f.kinds, r.Kind)) &&
		(len(f.payloads) == 0 || r.Kind == kindIdle || slices.Contains(f.payloads, r.Payload)) &&
		(len(f.cs) == 0 || r.Kind == kindIdle || slices.Contains(f.cs, r.C))
}

// words splits a comma-separated flag value, checking each word is known.
func words(flag, v string, known []string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for w := range strings.SplitSeq(v, ",") {
		w = strings.TrimSpace(w)
		if !slices.Contains(known, w) {
			return nil, fmt.Errorf("-%s %s: unknown %q (want one of %s)", flag, v, w, strings.Join(known, ", "))
		}
		out = append(out, w)
	}
	return out, nil
}

// sizes parses a comma-separated list of byte counts; "4k" or "4KiB" is 4096.
func sizes(flag, v string) ([]int, error) {
	if v == "" {
		return nil, nil
	}
	var out []int
	for w := range strings.SplitSeq(v, ",") {
		w = strings.ToLower(strings.TrimSpace(w))
		mult := 1
		for _, suffix := range []string{"kib", "k"} {
			if s, ok := strings.CutSuffix(w, suffix); ok {
				w, mult = s, 1024
				break
			}
		}
		w = strings.TrimSuffix(w, "b")
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s %s: %q is not a positive number", flag, v, w)
		}
		out = append(out, n*mult)
	}
	return out, nil
}
