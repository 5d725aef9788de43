package stats

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/poison"
)

// Timing of the serving app's stats.
const (
	// sampleInterval and rateWindow: the counters are sampled every 5s
	// and rates cover the last minute.
	sampleInterval = 5 * time.Second
	rateWindow     = time.Minute
	// readTimeout bounds one read of the broker and the database, so a
	// slow broker does not stall /metrics.
	readTimeout = 3 * time.Second
	// maxAge is how long a read serves /metrics and /api/ops/stats before
	// the next one: scrapes, the console and operators share it.
	maxAge = 2 * time.Second
)

// Service is the serving app's stats: the [Report] of GET /api/ops/stats,
// and the depths, backlog and poison counts on /metrics ([Service.Metrics]).
type Service struct {
	reader  Reader
	sampler *sampler
	metrics *prometheus.Registry

	mu     sync.Mutex // held while reading
	shared Shared
}

// Module provides the *Service and its route; the serving app starts its
// sampler. It builds nothing that touches the broker or the database
// before they are read.
var Module = fx.Module("stats",
	fx.Provide(
		newForApp,
		httpx.AsRoutes(Routes),
	),
)

type params struct {
	fx.In
	Lifecycle fx.Lifecycle
	Bus       *bus.Bus
	Config    bus.Config
	DB        *db.DB
	Poison    *poison.Store
	Registry  *prometheus.Registry
}

func newForApp(p params) (*Service, error) {
	s, err := New(Reader{Bus: p.Bus, Handlers: p.Bus.Handlers, Config: p.Config, DB: p.DB, Poison: p.Poison}, p.Registry)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StartStopHook(s.sampler.start, s.sampler.close))
	return s, nil
}

// New returns the stats of the process whose counters counters gathers
// (the registry the bus registers its metrics on), reading the broker and
// the database through r. Start the rates with Start.
func New(r Reader, counters prometheus.Gatherer) (*Service, error) {
	s := &Service{reader: r, sampler: newSampler(counters, sampleInterval, rateWindow), metrics: prometheus.NewRegistry()}
	if err := s.metrics.Register(collector{s}); err != nil {
		return nil, err
	}
	return s, nil
}

// Start samples the counters every 5s until Stop, so that reports have
// rates over the last minute.
func (s *Service) Start() { s.sampler.start() }

// Stop ends the sampling.
func (s *Service) Stop() { s.sampler.close() }

// Report is the stats now.
func (s *Service) Report(ctx context.Context) Report {
	return s.reader.Build(s.read(ctx), s.sampler.window())
}

// Metrics gathers the depths, backlog and poison counts, read on scrape
// (at most every 2s, each read within 3s). It is a registry of its own, so
// that the sampler, which gathers the application's registry, does not
// read the broker.
func (s *Service) Metrics() prometheus.Gatherer { return s.metrics }

// read returns a read at most maxAge old, reading again if needed; callers
// that arrive during a read wait for it.
func (s *Service) read(ctx context.Context) Shared {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.shared.At.IsZero() && time.Since(s.shared.At) < maxAge {
		return s.shared
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
	defer cancel()
	s.shared = s.reader.Read(ctx)
	return s.shared
}

// Routes serve the report as GET /api/ops/stats on the admin listener.
func Routes(s *Service) []httpx.Route {
	return []httpx.Route{{Pattern: "GET /api/ops/stats", Handler: httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		httpx.WriteJSON(w, http.StatusOK, s.Report(r.Context()))
		return nil
	}), Admin: true}}
}

func sortReport(r *Report) {
	slices.SortFunc(r.Topics, func(a, b Topic) int { return cmp.Compare(a.Topic, b.Topic) })
	for _, t := range r.Topics {
		slices.Sort(t.Handlers)
	}
	slices.SortFunc(r.Handlers, func(a, b Handler) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Handler, b.Handler))
	})
}
