package settings_test

import (
	"net/http"
	"testing"

	"go.uber.org/fx"

	"github.com/example/monolith/contexts/settings"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/setting"
)

// shop stands for any context that declares settings.
var shop = setting.Schema{Context: "shop", Settings: []setting.Definition{
	setting.Bool("open", true, "whether the shop takes orders"),
	setting.Enum("tier", "basic", []string{"basic", "pro"}, "tier of new customers"),
}}

// startInstance starts one process of the application on d: the settings
// module and a shop module declaring its settings, whose cache it returns.
// Once it has started, the settings module has stored shop's schema, handed
// over by setting.Declare.
func startInstance(t *testing.T, d *db.DB) (*contexttest.Harness, *setting.Cache) {
	t.Helper()
	var cache *setting.Cache
	h := contexttest.StartOn(t, d, settings.Module, fx.Module("shop", setting.Declare(shop), fx.Populate(&cache)))
	return h, cache
}

func TestCachesFollowUpdatesAndRestarts(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		// Instances starting together each store shop's schema: they wait
		// for each other's rows instead of failing.
		t.Run("instances starting together", func(t *testing.T) {
			for _, name := range []string{"one", "two"} {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					startInstance(t, d)
				})
			}
		})

		// The first process stops, at the end of its subtest, before the
		// second starts: each has its own in-process bus, and the relays of
		// processes sharing the database forward each event once, to one of
		// those buses (processes share events through a broker).
		if !t.Run("first instance", func(t *testing.T) {
			h, cache := startInstance(t, d)
			if r := h.Do(t, "GET", "/api/settings/shop", nil); r.Status != http.StatusOK {
				t.Fatalf("GET shop's settings after start: %d %s, want 200", r.Status, r.Raw)
			}
			if !cache.Bool("open") || cache.String("tier") != "basic" {
				t.Fatal("the cache does not start from the defaults")
			}
			for _, put := range []struct{ key, body string }{{"open", `{"value": false}`}, {"tier", `{"value": "pro"}`}} {
				if r := h.Do(t, "PUT", "/api/settings/shop/"+put.key, put.body); r.Status != http.StatusOK {
					t.Fatalf("PUT %s: %d %s, want 200", put.key, r.Status, r.Raw)
				}
			}
			contexttest.Eventually(t, "the cache to follow the updates", func() bool {
				return !cache.Bool("open") && cache.String("tier") == "pro"
			})
		}) {
			return
		}

		// A restarted process holds only the defaults until its settings
		// module, storing shop's schema at start, republishes the stored
		// values.
		_, cache := startInstance(t, d)
		contexttest.Eventually(t, "a restarted cache to converge", func() bool {
			return !cache.Bool("open") && cache.String("tier") == "pro"
		})
	})
}
