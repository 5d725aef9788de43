package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/example/monolith/internal/apptest"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
)

// TestConsoleLiveOnBrokers opens the console's live stream (the SSE feed
// its Live view reads) on an instance running on RabbitMQ and on Redis,
// registers a user, and sees the registration published and handled by
// customer.create-profile, with the event's correlation id: the console
// shows what crosses a real broker, not only gochannel. The browser test
// (TestConsoleInABrowser) drives the page itself.
func TestConsoleLiveOnBrokers(t *testing.T) {
	for _, b := range []struct {
		name string
		new  func(*testing.T) *apptest.Broker
	}{{"amqp", apptest.AMQP}, {"redisstream", apptest.Redis}} {
		t.Run(b.name, func(t *testing.T) {
			broker := b.new(t)
			env := append([]string{"APP_DATABASE_DSN=" + dbtest.Config(t, db.DriverPostgres).DSN}, broker.Env...)
			in := apptest.Start(t, broker.Config, env...)
			rows := liveStream(t, in, "context=identity")

			email := "live-" + apptest.RandomID() + "@example.com"
			reg := in.Expect(t, http.StatusCreated, "POST", "/api/identity/users",
				map[string]string{"email": email, "name": "Live", "password": "correct horse battery"})
			userID := reg.Str("id")

			seen := map[string]bool{}
			deadline := time.After(30 * time.Second)
			for !seen["published"] || !seen["customer.create-profile"] {
				select {
				case r, ok := <-rows:
					if !ok {
						t.Fatalf("live stream ended; saw %v", seen)
					}
					if r.Topic != "identity.user.registered" || !strings.Contains(string(r.Payload), userID) {
						continue
					}
					if r.Envelope == nil || r.Envelope.CorrelationID == "" {
						t.Fatalf("row without the event's envelope: %+v", r)
					}
					if r.Result == "published" {
						seen["published"] = true
					} else if r.Handler == "customer.create-profile" && r.Result == "ok" {
						seen[r.Handler] = true
					}
				case <-deadline:
					t.Fatalf("after 30s the live stream showed %v of the registration of %s", seen, userID)
				}
			}
		})
	}
}

// liveRow is the part of a live-stream row the test reads.
type liveRow struct {
	Topic    string          `json:"topic"`
	Handler  string          `json:"handler"`
	Result   string          `json:"result"`
	Payload  json.RawMessage `json:"payload"`
	Envelope *struct {
		CorrelationID string `json:"correlation_id"`
	} `json:"envelope"`
}

// liveStream opens GET /console/api/live?query on in's admin listener and
// sends its rows on the channel it returns until the test ends.
func liveStream(t *testing.T, in *apptest.Instance, query string) <-chan liveRow {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.AdminURL+"/console/api/live?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("live stream: %s, %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	rows := make(chan liveRow)
	go func() {
		defer close(rows)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if name, ok := strings.CutPrefix(line, "event: "); ok {
				event = name
				continue
			}
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok || event != "row" {
				continue
			}
			var r liveRow
			if err := json.Unmarshal([]byte(data), &r); err != nil {
				panic(fmt.Sprintf("live row %q: %v", data, err))
			}
			select {
			case rows <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return rows
}
