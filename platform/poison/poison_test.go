package poison_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/poison"
	"github.com/example/monolith/platform/poison/internal/store"
)

type forwarded struct {
	mu   sync.Mutex
	msgs map[string]*message.Message // by topic
}

func (f *forwarded) Publish(topic string, msgs ...*message.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		f.msgs[topic] = m
	}
	return nil
}

func (f *forwarded) Close() error { return nil }

func (f *forwarded) get(topic string) *message.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msgs[topic]
}

func poisoned(id, topic, handler string) bus.PoisonedMessage {
	return bus.PoisonedMessage{
		ID: id, Topic: topic, Handler: handler, Reason: "boom\nstack...", Attempts: 6, Payload: []byte(`{"n":1}`),
		Metadata: map[string]string{
			bus.MetaEventID: id, bus.MetaCorrelationID: "corr-" + id, middleware.ReasonForPoisonedKey: "boom",
			middleware.PoisonedTopicKey: topic, middleware.PoisonedHandlerKey: handler, bus.MetaAttempts: "6",
		},
	}
}

func TestStoreListReplayPurge(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		out := &forwarded{msgs: map[string]*message.Message{}}
		relay, err := outbox.NewRelay(d, out, outbox.Config{PollInterval: 10 * time.Millisecond, BatchSize: 10}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := relay.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = relay.Close() }()

		s := poison.NewStore(d)
		for _, p := range []bus.PoisonedMessage{
			poisoned("e1", "shop.order.placed", "billing.charge"),
			poisoned("e2", "shop.order.placed", "mail.confirm"),
			poisoned("e3", "shop.order.cancelled", "billing.charge"),
			poisoned("e1", "shop.order.placed", "billing.charge"), // a redelivery: same row
		} {
			if err := s.Save(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.List(ctx, poison.Filter{})
		if err != nil || len(all) != 3 {
			t.Fatalf("List = %d messages, %v; want 3", len(all), err)
		}
		charge, _ := s.List(ctx, poison.Filter{Handler: "billing.charge"})
		placedCharge, _ := s.List(ctx, poison.Filter{Topic: "shop.order.placed", Handler: "billing.charge"})
		if len(charge) != 2 || len(placedCharge) != 1 || placedCharge[0].MessageID != "e1" {
			t.Fatalf("filters: handler %d, topic+handler %v", len(charge), placedCharge)
		}
		got, err := s.Get(ctx, placedCharge[0].ID)
		if err != nil || got.Reason != "boom\nstack..." || got.Attempts != 6 || string(got.Payload) != `{"n":1}` || got.Metadata[bus.MetaCorrelationID] != "corr-e1" {
			t.Fatalf("Get = %+v, %v", got, err)
		}

		if err := s.Replay(ctx, operator, got.ID); err != nil {
			t.Fatal(err)
		}
		var replayed *message.Message
		for deadline := time.Now().Add(10 * time.Second); replayed == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			replayed = out.get("shop.order.placed")
		}
		if replayed == nil {
			t.Fatal("replayed message never reached the bus")
		}
		md := replayed.Metadata
		if replayed.UUID != "e1" || md.Get(bus.MetaCorrelationID) != "corr-e1" || md.Get(bus.MetaReplayFor) != "billing.charge" ||
			md.Get(middleware.ReasonForPoisonedKey) != "" || md.Get(bus.MetaAttempts) != "" || string(replayed.Payload) != `{"n":1}` {
			t.Fatalf("replayed %s %v %s: want the original id, correlation and payload, addressed to billing.charge, poison marks removed", replayed.UUID, md, replayed.Payload)
		}
		if _, err := s.Get(ctx, got.ID); !errors.Is(err, poison.ErrNotFound) {
			t.Fatalf("a replayed message stays in the store: %v", err)
		}
		if err := s.Purge(ctx, operator, "nope"); !errors.Is(err, poison.ErrNotFound) {
			t.Fatalf("Purge(unknown) = %v", err)
		}
		n, err := s.PurgeAll(ctx, operator, poison.Filter{Topic: "shop.order.cancelled"})
		if err != nil || n != 1 {
			t.Fatalf("PurgeAll = %d, %v", n, err)
		}
		if left, _ := s.Count(ctx, poison.Filter{}); left != 1 {
			t.Fatalf("%d messages left, want 1", left)
		}
	})
}

var operator = poison.Actor{Who: "3f2a9c1b", Via: poison.ViaHTTP}

// TestPurgeNeedsAFilterAndEveryChangeIsAudited checks a purge selecting
// everything needs All, and that each replay and purge leaves one audit
// entry saying who, how, on what and how many.
func TestPurgeNeedsAFilterAndEveryChangeIsAudited(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		// The relay creates the outbox replays write to; it need not run.
		if _, err := outbox.NewRelay(d, &forwarded{}, outbox.DefaultConfig(), slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		s := poison.NewStore(d)
		for _, p := range []bus.PoisonedMessage{
			poisoned("e1", "shop.order.placed", "billing.charge"),
			poisoned("e2", "shop.order.placed", "mail.confirm"),
			poisoned("e3", "shop.order.cancelled", "billing.charge"),
			poisoned("e4", "shop.order.cancelled", "mail.confirm"),
			poisoned("e5", "shop.order.shipped", "mail.confirm"),
		} {
			if err := s.Save(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		local := poison.Actor{Who: "local", Via: poison.ViaCLI}

		if n, err := s.PurgeAll(ctx, local, poison.Filter{}); !errors.Is(err, poison.ErrUnfiltered) || n != 0 {
			t.Fatalf("PurgeAll without a filter = %d, %v; want ErrUnfiltered", n, err)
		}
		if left, _ := s.Count(ctx, poison.Filter{}); left != 5 {
			t.Fatalf("a refused purge left %d of 5 messages", left)
		}
		list, _ := s.List(ctx, poison.Filter{Topic: "shop.order.placed", Handler: "billing.charge"})
		if err := s.Replay(ctx, operator, list[0].ID); err != nil {
			t.Fatal(err)
		}
		if n, err := s.ReplayAll(ctx, local, poison.Filter{Topic: "shop.order.placed"}); err != nil || n != 1 {
			t.Fatalf("ReplayAll = %d, %v", n, err)
		}
		list, _ = s.List(ctx, poison.Filter{Topic: "shop.order.shipped"})
		if err := s.Purge(ctx, operator, list[0].ID); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PurgeAll(ctx, local, poison.Filter{Handler: "billing.charge"}); err != nil || n != 1 {
			t.Fatalf("PurgeAll by handler = %d, %v", n, err)
		}
		if n, err := s.PurgeAll(ctx, operator, poison.Filter{All: true}); err != nil || n != 1 {
			t.Fatalf("PurgeAll with All = %d, %v", n, err)
		}

		entries, err := s.Audit(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			who, via, action, target string
			messages                 int64
		}
		var got []row
		for _, e := range entries {
			if e.At.IsZero() || time.Since(e.At) > time.Minute {
				t.Errorf("entry %+v: at %s, want now", e, e.At)
			}
			got = append(got, row{e.Who, e.Via, e.Action, e.Target(), e.Messages})
		}
		want := []row{ // newest first
			{"3f2a9c1b", "http", "purge", "all", 1},
			{"local", "cli", "purge", "handler=billing.charge", 1},
			{"3f2a9c1b", "http", "purge", list[0].ID, 1},
			{"local", "cli", "replay", "topic=shop.order.placed", 1},
			{"3f2a9c1b", "http", "replay", entries[4].MessageID, 1},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("audit:\n%+v\nwant\n%+v", got, want)
		}
		if e := entries[4]; e.MessageID == "" || e.Topic != "shop.order.placed" || e.Handler != "billing.charge" {
			t.Fatalf("a single replay's entry names the message and its topic and handler: %+v", e)
		}
		if latest, _ := s.Audit(ctx, 2); len(latest) != 2 || latest[0].ID != entries[0].ID {
			t.Fatalf("Audit(2) = %+v", latest)
		}
	})
}

func TestHTTP(t *testing.T) {
	d := dbtest.Open(t, db.DriverSQLite, store.Migrations)
	s := poison.NewStore(d)
	for _, id := range []string{"a", "b"} {
		if err := s.Save(context.Background(), poisoned(id, "shop.order.placed", "billing.charge")); err != nil {
			t.Fatal(err)
		}
	}
	const token = "poison-test-token-0123456789"
	h, err := httpx.NewAdminHandler(poison.Routes(s), nil, token, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		h.ServeHTTP(rec, req)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	code, body := do("GET", "/api/ops/poison?handler=billing.charge&limit=1")
	msgs, _ := body["messages"].([]any)
	if code != http.StatusOK || len(msgs) != 1 || body["total"] != float64(2) {
		t.Fatalf("list = %d %v", code, body)
	}
	id := msgs[0].(map[string]any)["id"].(string)
	if code, body := do("GET", "/api/ops/poison/"+id); code != http.StatusOK || body["handler"] != "billing.charge" {
		t.Fatalf("show = %d %v", code, body)
	}
	if code, _ := do("GET", "/api/ops/poison/missing"); code != http.StatusNotFound {
		t.Fatalf("show missing = %d", code)
	}
	if code, _ := do("GET", "/api/ops/poison?limit=zero"); code != http.StatusBadRequest {
		t.Fatalf("bad limit = %d", code)
	}
	if code, body := do("DELETE", "/api/ops/poison/"+id); code != http.StatusOK || body["purged"] != float64(1) {
		t.Fatalf("purge = %d %v", code, body)
	}
	for _, path := range []string{"/api/ops/poison", "/api/ops/poison?all=false", "/api/ops/poison?limit=5"} {
		if code, body := do("DELETE", path); code != http.StatusBadRequest || !strings.Contains(marshal(body), "all=true") {
			t.Fatalf("DELETE %s = %d %v, want 400 naming all=true", path, code, body)
		}
	}
	if code, _ := do("DELETE", "/api/ops/poison?all=maybe"); code != http.StatusBadRequest {
		t.Fatalf("all=maybe = %d, want 400", code)
	}
	if code, body := do("GET", "/api/ops/poison"); code != http.StatusOK || body["total"] != float64(1) {
		t.Fatalf("a refused purge removed messages: %d %v", code, body)
	}
	if code, body := do("DELETE", "/api/ops/poison?topic=shop.order.placed"); code != http.StatusOK || body["purged"] != float64(1) {
		t.Fatalf("purge by topic = %d %v", code, body)
	}
	if code, body := do("DELETE", "/api/ops/poison?all=true"); code != http.StatusOK || body["purged"] != float64(0) {
		t.Fatalf("purge all=true = %d %v", code, body)
	}
	if code, body := do("GET", "/api/ops/poison"); code != http.StatusOK || !strings.Contains(marshal(body), `"total":0`) {
		t.Fatalf("after purge = %d %v", code, body)
	}

	// Each purge is audited as done by the token's id over HTTP.
	code, body = do("GET", "/api/ops/poison/audit")
	entries, _ := body["entries"].([]any)
	if code != http.StatusOK || len(entries) != 3 {
		t.Fatalf("audit = %d %v, want 3 entries", code, body)
	}
	newest := entries[0].(map[string]any)
	if newest["who"] != httpx.TokenID(token) || newest["via"] != "http" || newest["action"] != "purge" || newest["messages"] != float64(0) {
		t.Fatalf("newest audit entry %v", newest)
	}
	if single := entries[2].(map[string]any); single["message_id"] != id || single["messages"] != float64(1) {
		t.Fatalf("oldest audit entry %v, want the purge of %s", single, id)
	}
	if code, body := do("GET", "/api/ops/poison/audit?limit=1"); code != http.StatusOK || len(body["entries"].([]any)) != 1 {
		t.Fatalf("audit limit=1 = %d %v", code, body)
	}
	if strings.Contains(marshal(body), token) {
		t.Fatal("the audit shows the token itself")
	}
}

func marshal(v any) string { b, _ := json.Marshal(v); return string(b) }

// Prune removes the messages poisoned before the cut-off, keeps the others,
// and leaves a purge in the audit, by "app" via retention.
func TestPruneRemovesOldMessagesAndIsAudited(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := poison.NewStore(d)
		for _, id := range []string{"old", "new"} {
			if err := s.Save(ctx, poisoned(id, "shop.order.placed", "billing.charge")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.ExecContext(ctx, `UPDATE poison_messages SET poisoned_at = $1 WHERE message_id = 'old'`, db.Now().Add(-40*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Prune(ctx, db.Now().Add(-30*24*time.Hour)); err != nil || n != 1 {
			t.Fatalf("Prune = %d, %v; want the old message", n, err)
		}
		left, _ := s.List(ctx, poison.Filter{})
		if len(left) != 1 || left[0].MessageID != "new" {
			t.Fatalf("left %+v, want the new message", left)
		}
		audit, err := s.Audit(ctx, 10)
		if err != nil || len(audit) != 1 || audit[0].Action != poison.ActionPurge || audit[0].Via != poison.ViaRetention || audit[0].Messages != 1 {
			t.Fatalf("audit %+v, %v", audit, err)
		}
		if n, err := s.Prune(ctx, db.Now().Add(-30*24*time.Hour)); err != nil || n != 0 {
			t.Fatalf("a second Prune = %d, %v", n, err)
		}
		if audit, _ := s.Audit(ctx, 10); len(audit) != 1 {
			t.Fatalf("a prune that removed nothing was audited: %+v", audit)
		}
	})
}
