package contexttest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/contexttest"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/outbox"
)

type pingV1 struct {
	N int `json:"n"`
}

type pongV1 struct {
	N int `json:"n"`
}

var (
	pinged = bus.NewTopic[pingV1]("demo.ping.sent", 1)
	ponged = bus.NewTopic[pongV1]("demo.pong.sent", 1)
)

const pong = "demo.pong-on-ping"

// demo stands for a context: POST /api/demo/pings publishes demo.ping.sent
// through the outbox, and its handler answers every ping with
// demo.pong.sent, except a negative one, which it rejects for good.
var demo = fx.Module("demo",
	fx.Provide(httpx.AsRoutes(func(d *db.DB) []httpx.Route {
		return []httpx.Route{{Pattern: "POST /api/demo/pings", Handler: httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			var body pingV1
			if err := httpx.Decode(w, r, &body); err != nil {
				return err
			}
			err := d.InTx(r.Context(), func(ctx context.Context, tx *db.Tx) error {
				return bus.Publish(ctx, outbox.Publisher(tx), pinged, "p1", body)
			})
			if err != nil {
				return err
			}
			httpx.WriteJSON(w, http.StatusAccepted, body)
			return nil
		})}}
	})),
	fx.Provide(bus.AsHandlers(func(d *db.DB) []bus.Handler {
		return []bus.Handler{outbox.NewHandler(d, pong, pinged, func(ctx context.Context, e bus.Event[pingV1]) error {
			if e.Payload.N < 0 {
				return bus.Permanent(errors.New("negative ping"))
			}
			return d.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
				return bus.Publish(ctx, outbox.Publisher(tx), ponged, e.AggregateID, pongV1(e.Payload))
			})
		})}
	})),
)

func TestOutboxAndHandlerOverHTTP(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		if r := h.Do(t, "GET", "/readyz", nil); r.Status != http.StatusOK || r.Body["status"] != "ready" {
			t.Fatalf("GET /readyz = %d %s, want ready", r.Status, r.Raw)
		}
		if r := h.Do(t, "POST", "/api/demo/pings", map[string]int{"n": 7}); r.Status != http.StatusAccepted || r.Body["n"] != 7.0 {
			t.Fatalf("POST ping = %d %s", r.Status, r.Raw)
		}
		ping := contexttest.Next(t, h, pinged)
		if ping.Payload.N != 7 || ping.Source != "demo" || ping.AggregateID != "p1" {
			t.Fatalf("ping = %+v", ping)
		}
		if e := contexttest.Next(t, h, ponged); e.Payload.N != 7 || e.CausationID != ping.EventID || e.CorrelationID != ping.CorrelationID {
			t.Fatalf("pong = %+v, want 7 caused by %s", e, ping.EventID)
		}
		contexttest.Eventually(t, pong+" done", func() bool { return h.Handled(t, pong) == 1 })
		contexttest.None(t, h, ponged)
		h.NonePoisoned(t)

		r := h.Do(t, "POST", "/api/demo/pings", `{"n":`)
		if e, _ := r.Body["error"].(map[string]any); r.Status != http.StatusBadRequest || e["code"] != "bad_request" {
			t.Fatalf("malformed POST = %d %s, want 400 bad_request", r.Status, r.Raw)
		}
		contexttest.None(t, h, pinged)
	}, demo)
}

func TestDirectPublishAndPoison(t *testing.T) {
	contexttest.Each(t, func(t *testing.T, h *contexttest.Harness) {
		if err := bus.Publish(context.Background(), h.Bus, pinged, "p2", pingV1{N: -1}); err != nil {
			t.Fatal(err)
		}
		ping := contexttest.Next(t, h, pinged)
		if ping.Payload.N != -1 {
			t.Fatalf("ping = %+v, want the one published", ping)
		}
		p := h.NextPoisoned(t)
		if p.Handler != pong || p.Topic != pinged.Name() || p.Attempts != 1 || p.ID != ping.EventID {
			t.Fatalf("poisoned = %+v, want %s's ping %s after 1 attempt", p, pong, ping.EventID)
		}
		contexttest.None(t, h, ponged)
	}, demo)
}

// TestOptionsReachTheApplication: options given with the modules apply to
// the whole application, the harness's own view of it included.
func TestOptionsReachTheApplication(t *testing.T) {
	h := contexttest.Start(t, db.DriverSQLite, demo,
		fx.Decorate(func(c bus.Config) bus.Config {
			c.PoisonTopic = "demo_poisoned"
			return c
		}))
	if err := bus.Publish(context.Background(), h.Bus, pinged, "p3", pingV1{N: -1}); err != nil {
		t.Fatal(err)
	}
	if p := h.NextPoisoned(t); p.Handler != pong {
		t.Fatalf("poisoned = %+v, want %s's", p, pong)
	}
}

// TestStartOnSharesTheDatabase: applications started on one database are
// instances sharing it, and the database outlives each of them.
func TestStartOnSharesTheDatabase(t *testing.T) {
	for _, driver := range dbtest.Drivers {
		t.Run(driver, func(t *testing.T) {
			d := dbtest.Open(t, driver)
			t.Run("first instance", func(t *testing.T) {
				h := contexttest.StartOn(t, d, demo)
				if h.DB != d {
					t.Fatal("the application opened a database of its own")
				}
				if r := h.Do(t, "POST", "/api/demo/pings", map[string]int{"n": 1}); r.Status != http.StatusAccepted {
					t.Fatalf("POST ping = %d %s", r.Status, r.Raw)
				}
				contexttest.Next(t, h, ponged)
			})
			if err := d.PingContext(context.Background()); err != nil {
				t.Fatalf("the database closed with the first instance: %v", err)
			}
			h := contexttest.StartOn(t, d, demo)
			var processed int
			if err := h.DB.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM processed_events WHERE handler = $1`, pong).Scan(&processed); err != nil {
				t.Fatal(err)
			}
			if processed != 1 {
				t.Fatalf("the second instance sees %d events processed by %s, want the first instance's 1", processed, pong)
			}
		})
	}
}
