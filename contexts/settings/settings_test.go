package settings_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/example/monolith/contexts/settings"
	"github.com/example/monolith/contexts/settings/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/setting"
)

// shop stands for any context that declares settings.
var shop = setting.Schema{Context: "shop", Settings: []setting.Definition{
	setting.Bool("open", true, "whether the shop takes orders"),
	setting.Enum("tier", "basic", []string{"basic", "pro"}, "tier of new customers"),
}}

// instance is one process of the application: the settings module and a
// shop module declaring its settings, wired by fx with the platform's bus
// (in process) and outbox relay, and an HTTP server on the routes.
type instance struct {
	app   *fx.App
	url   string
	cache *setting.Cache
	// stop ends the process: its relay, then its bus.
	stop func()
}

// build wires an instance on d without starting it.
func build(t *testing.T, d *db.DB) instance {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	var (
		cache  *setting.Cache
		routes []httpx.Route
	)
	app := fx.New(fx.NopLogger,
		fx.Supply(d, logger, bus.DefaultConfig(), outbox.DefaultConfig()),
		fx.Provide(func() prometheus.Registerer { return prometheus.NewRegistry() }),
		bus.Module,
		outbox.Module,
		settings.Module,
		fx.Module("shop", setting.Declare(shop), fx.Populate(&cache)),
		bus.RegisterHandlers,
		outbox.Run,
		fx.Invoke(fx.Annotate(func(r []httpx.Route) { routes = r }, fx.ParamTags(`group:"http.routes"`))),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { _ = app.Stop(context.Background()) }) }
	t.Cleanup(stop)
	h, err := httpx.NewHandler(routes, nil, prometheus.NewRegistry(), logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return instance{app: app, url: srv.URL, cache: cache, stop: stop}
}

// start runs an instance on d: once it has started, the settings module has
// stored shop's schema, handed over by setting.Declare.
func start(t *testing.T, d *db.DB) instance {
	t.Helper()
	in := build(t, d)
	if err := in.app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return in
}

func (in instance) do(t *testing.T, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, in.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestCachesFollowUpdatesAndRestarts(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations, outbox.Migrations}, func(t *testing.T, d *db.DB) {
		// Instances starting together each store shop's schema: they wait
		// for each other's rows instead of failing.
		together := []instance{build(t, d), build(t, d)}
		started := make(chan error, len(together))
		for _, in := range together {
			go func() { started <- in.app.Start(context.Background()) }()
		}
		for range together {
			if err := <-started; err != nil {
				t.Fatalf("instances starting together: %v", err)
			}
		}
		for _, in := range together {
			in.stop()
		}

		first := start(t, d)
		if code := first.do(t, "GET", "/api/settings/shop", ""); code != http.StatusOK {
			t.Fatalf("GET shop's settings after start: %d, want 200", code)
		}
		if !first.cache.Bool("open") || first.cache.String("tier") != "basic" {
			t.Fatal("the cache does not start from the defaults")
		}
		for _, put := range []struct{ key, body string }{{"open", `{"value": false}`}, {"tier", `{"value": "pro"}`}} {
			if code := first.do(t, "PUT", "/api/settings/shop/"+put.key, put.body); code != http.StatusOK {
				t.Fatalf("PUT %s: %d, want 200", put.key, code)
			}
		}
		waitFor(t, "the cache to follow the updates", func() bool {
			return !first.cache.Bool("open") && first.cache.String("tier") == "pro"
		})

		// A restarted process holds only the defaults until its settings
		// module, storing shop's schema at start, republishes the stored
		// values. The first process stops before: each has its own
		// in-process bus, and the relays of processes sharing the database
		// forward each event once, to one of those buses (processes share
		// events through a broker).
		first.stop()
		second := start(t, d)
		waitFor(t, "a restarted cache to converge", func() bool {
			return !second.cache.Bool("open") && second.cache.String("tier") == "pro"
		})
	})
}
