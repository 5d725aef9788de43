package bus_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
)

type countV2 struct {
	Count int    `json:"count"`
	Unit  string `json:"unit"`
}

// counted is at version 2; the events below claim other versions through
// their envelope, as events of an older or newer publisher would.
var counted = bus.NewTopic[countV2]("test.count.taken", 2)

// versionedBus runs one handler of counted and records what it handles and
// what is poisoned, logging to logs.
func versionedBus(t *testing.T, logs *syncBuffer) (b *bus.Bus, handled chan bus.Event[countV2], poisoned chan bus.PoisonedMessage) {
	t.Helper()
	cfg := bus.DefaultConfig()
	cfg.Retry.InitialInterval, cfg.Retry.MaxInterval = time.Millisecond, time.Millisecond
	b, err := bus.New(context.Background(), cfg, bus.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	handled, poisoned = make(chan bus.Event[countV2], 10), make(chan bus.PoisonedMessage, 10)
	err = b.Register(
		bus.NewHandler("test.tally", counted, func(_ context.Context, e bus.Event[countV2]) error {
			handled <- e
			return nil
		}),
		bus.NewPoisonHandler("test.poison", func(_ context.Context, p bus.PoisonedMessage) error {
			poisoned <- p
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b, handled, poisoned
}

// publishAs publishes an event of counted whose envelope says version and
// whose payload is body.
func publishAs(t *testing.T, b *bus.Bus, version, body string) string {
	t.Helper()
	msg, err := bus.NewMessage(context.Background(), counted, "c-1", countV2{})
	if err != nil {
		t.Fatal(err)
	}
	msg.Metadata.Set(bus.MetaSchemaVersion, version)
	msg.Payload = []byte(body)
	if err := b.Publish(counted.Name(), msg); err != nil {
		t.Fatal(err)
	}
	return msg.UUID
}

func TestNewerSchemaVersionIsHandledAndLoggedOnce(t *testing.T) {
	var logs syncBuffer
	b, handled, poisoned := versionedBus(t, &logs)

	publishAs(t, b, "3", `{"count":1,"unit":"kg","precision":2}`)
	publishAs(t, b, "3", `{"count":2,"unit":"kg","precision":2}`)
	for range 2 {
		select {
		case e := <-handled:
			if e.SchemaVersion != 3 || e.Payload.Unit != "kg" {
				t.Fatalf("handled %+v", e)
			}
		case p := <-poisoned:
			t.Fatalf("a newer event was poisoned: %s", p.Reason)
		case <-time.After(5 * time.Second):
			t.Fatal("a newer event was not handled")
		}
	}
	warnings := logs.linesWith("newer schema version")
	if len(warnings) != 1 {
		t.Fatalf("%d warnings for two events of one newer version, want 1:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	t.Log(warnings[0])
	for _, want := range []string{"level=WARN", "handler=test.tally", "topic=test.count.taken", "event_version=3", "handler_version=2"} {
		if !strings.Contains(warnings[0], want) {
			t.Errorf("warning lacks %q: %s", want, warnings[0])
		}
	}
}

func TestOlderSchemaVersionThatDoesNotDecodeIsPoisonedAtOnce(t *testing.T) {
	var logs syncBuffer
	b, handled, poisoned := versionedBus(t, &logs)

	id := publishAs(t, b, "1", `{"count":"three"}`)
	select {
	case p := <-poisoned:
		t.Log(p.Reason)
		want := "event " + id + " of test.count.taken has schema version 1, older than version 2 handler test.tally decodes, and does not decode: json: cannot unmarshal"
		if !strings.HasPrefix(p.Reason, want) {
			t.Errorf("reason = %q\nwant it to start with %q", p.Reason, want)
		}
		if p.Attempts != 1 || p.Handler != "test.tally" {
			t.Errorf("poisoned by %s after %d attempts, want test.tally after 1", p.Handler, p.Attempts)
		}
	case e := <-handled:
		t.Fatalf("an undecodable event was handled: %+v", e)
	case <-time.After(5 * time.Second):
		t.Fatal("an undecodable older event was not poisoned")
	}
}

func TestOlderSchemaVersionThatDecodesIsHandled(t *testing.T) {
	var logs syncBuffer
	b, handled, poisoned := versionedBus(t, &logs)

	publishAs(t, b, "1", `{"count":3}`)
	select {
	case e := <-handled:
		if e.SchemaVersion != 1 || e.Payload.Count != 3 || e.Payload.Unit != "" {
			t.Fatalf("handled %+v", e)
		}
	case p := <-poisoned:
		t.Fatalf("a decodable older event was poisoned: %s", p.Reason)
	case <-time.After(5 * time.Second):
		t.Fatal("a decodable older event was not handled")
	}
	if lines := logs.linesWith("schema version"); len(lines) > 0 {
		t.Errorf("an older event was logged:\n%s", strings.Join(lines, "\n"))
	}
}
