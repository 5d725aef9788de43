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
	"github.com/example/monolith/platform/topics"
)

// shop stands for any context that declares settings.
var shop = setting.Schema{Context: "shop", Settings: []topics.SettingDefinition{
	setting.Bool("open", true, "whether the shop takes orders"),
	setting.Enum("tier", "basic", []string{"basic", "pro"}, "tier of new customers"),
}}

// instance is one process of the application: the settings module wired by
// fx, its own in-process bus, outbox relay and HTTP server, and shop's
// settings cache.
type instance struct {
	url   string
	cache *setting.Cache
	// stop ends the process: its relay, then its bus.
	stop func()
}

// start runs an instance on d and announces shop's schema, as
// setting.Declare does once the bus runs.
func start(t *testing.T, d *db.DB) instance {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	b, err := bus.New(ctx, bus.DefaultConfig(), bus.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	var relay *outbox.Relay
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if relay != nil {
				_ = relay.Close()
			}
			_ = b.Close()
		})
	}
	t.Cleanup(stop)
	var (
		routes   []httpx.Route
		handlers []bus.Handler
	)
	app := fx.New(fx.NopLogger,
		fx.Supply(d, logger),
		fx.Provide(func() bus.Publisher { return b }),
		settings.Module,
		fx.Invoke(fx.Annotate(func(r []httpx.Route, h []bus.Handler) { routes, handlers = r, h },
			fx.ParamTags(`group:"http.routes"`, `group:"bus.handlers"`))),
	)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	cache := setting.NewCache(shop)
	err = b.Register(append(handlers, bus.NewHandler("shop.refresh-settings", topics.SettingUpdated,
		func(_ context.Context, e bus.Event[topics.SettingUpdatedV1]) error {
			cache.Apply(e.Payload)
			return nil
		}, bus.Broadcast()))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Before the announce: the relay creates the outbox tables the values
	// are republished into.
	if relay, err = outbox.NewRelay(d, b, outbox.DefaultConfig(), logger); err != nil {
		t.Fatal(err)
	}
	if err := relay.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := httpx.NewHandler(routes, nil, prometheus.NewRegistry(), logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if err := bus.Publish(ctx, b, topics.SchemaAnnounced, shop.Context,
		topics.SchemaAnnouncedV1{Context: shop.Context, Settings: shop.Settings}); err != nil {
		t.Fatal(err)
	}
	return instance{url: srv.URL, cache: cache, stop: stop}
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
		first := start(t, d)
		waitFor(t, "shop's schema stored", func() bool { return first.do(t, "GET", "/api/settings/shop", "") == http.StatusOK })
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

		// A restarted process holds only the defaults until its announce
		// makes the settings context republish the stored values. The first
		// process stops before: each has its own in-process bus, and the
		// relays of processes sharing the database forward each event once,
		// to one of those buses (processes share events through a broker).
		first.stop()
		second := start(t, d)
		waitFor(t, "a restarted cache to converge", func() bool {
			return !second.cache.Bool("open") && second.cache.String("tier") == "pro"
		})
	})
}
