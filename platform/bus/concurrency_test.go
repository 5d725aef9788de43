package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/config"
	"github.com/example/monolith/platform/testenv"
)

func noop(context.Context, bus.Event[greeting]) error { return nil }

func TestConcurrencyIsResolvedPerHandler(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Concurrency = 2
	cfg.Handlers = map[string]bus.HandlerConfig{"test.tuned": {Concurrency: 5}}
	b, err := bus.New(context.Background(), cfg, bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	err = b.Register(
		bus.NewHandler("test.default", greeted, noop),
		bus.NewHandler("test.option", greeted, noop, bus.Concurrency(3)),
		bus.NewHandler("test.tuned", greeted, noop, bus.Concurrency(1)),
		bus.NewHandler("test.ordered", greeted, noop, bus.Ordered()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"test.default": 2, "test.option": 3, "test.tuned": 5, "test.ordered": 1}
	for _, h := range b.Handlers() {
		if h.Concurrency() != want[h.Name()] {
			t.Errorf("%s: Concurrency() = %d, want %d", h.Name(), h.Concurrency(), want[h.Name()])
		}
	}
	if h := bus.NewHandler("test.x", greeted, noop, bus.Concurrency(7), bus.Ordered()); h.Concurrency() != 7 || !h.IsOrdered() {
		t.Errorf("before registration: Concurrency() = %d, IsOrdered() = %t", h.Concurrency(), h.IsOrdered())
	}
}

func TestRegisterRejectsBadConcurrency(t *testing.T) {
	tests := []struct {
		handler  bus.Handler
		handlers map[string]bus.HandlerConfig
		want     string
	}{
		{bus.NewHandler("test.zero", greeted, noop, bus.Concurrency(0)), nil, `handler "test.zero": Concurrency(0): must be >= 1`},
		{bus.NewHandler("test.both", greeted, noop, bus.Ordered(), bus.Concurrency(2)), nil, "Ordered() and Concurrency(2) exclude each other"},
		{bus.NewHandler("test.ordered", greeted, noop, bus.Ordered()), map[string]bus.HandlerConfig{"test.ordered": {Concurrency: 3}},
			"bus.handlers.test.ordered.concurrency: 3, but handler test.ordered is ordered"},
	}
	for _, tt := range tests {
		cfg := bus.DefaultConfig()
		cfg.Handlers = tt.handlers
		b, err := bus.New(context.Background(), cfg, bus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = b.Register(tt.handler)
		_ = b.Close()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Register(%s) = %v, want it to mention %q", tt.handler.Name(), err, tt.want)
		}
	}
}

func TestHandlersSectionLoadsFromYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.yaml")
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	type file struct {
		Bus bus.Config `yaml:"bus"`
	}
	write("bus:\n  concurrency: 2\n  handlers:\n    customer.create-profile:\n      concurrency: 8\n")
	f := file{Bus: bus.DefaultConfig()}
	if err := config.Load(path, &f); err != nil {
		t.Fatal(err)
	}
	if f.Bus.Concurrency != 2 || f.Bus.Handlers["customer.create-profile"].Concurrency != 8 {
		t.Fatalf("loaded concurrency %d and handlers %v", f.Bus.Concurrency, f.Bus.Handlers)
	}
	write("bus:\n  handlers:\n    customer.create-profile:\n      concurency: 8\n")
	err := config.Load(path, &file{Bus: bus.DefaultConfig()})
	if err == nil || !strings.Contains(err.Error(), `unknown key "bus.handlers.customer.create-profile.concurency"`) {
		t.Fatalf("Load with a misspelt key = %v", err)
	}
}

func TestRegisterHandlersRejectsAnUnknownHandlerKey(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Handlers = map[string]bus.HandlerConfig{"test.greet": {Concurrency: 2}, "test.greeet": {Concurrency: 2}}
	app := fx.New(
		fx.NopLogger,
		fx.Supply(cfg, slog.Default()),
		fx.Provide(func() prometheus.Registerer { return prometheus.NewRegistry() }),
		bus.Module,
		fx.Provide(bus.AsHandlers(func() []bus.Handler { return []bus.Handler{bus.NewHandler("test.greet", greeted, noop)} })),
		bus.RegisterHandlers,
	)
	err := app.Err()
	if err == nil || !strings.Contains(err.Error(), `bus.handlers.test.greeet: no handler named "test.greeet" is registered`) {
		t.Fatalf("start-up with a misspelt bus.handlers key = %v", err)
	}
	if strings.Contains(err.Error(), "bus.handlers.test.greet:") {
		t.Fatalf("a registered handler was reported: %v", err)
	}
}

func TestAMQPOrderedOnAnExistingQueueSaysHowToFixIt(t *testing.T) {
	url := testenv.RequireAMQP(t)
	cfg := bus.DefaultConfig()
	cfg.Adapter, cfg.AMQP.URL, cfg.AMQP.Exchange = bus.AdapterAMQP, url, "conformance.events"
	name := fmt.Sprintf("test.reordered-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		if conn, err := amqp091.Dial(url); err == nil {
			defer func() { _ = conn.Close() }()
			if ch, err := conn.Channel(); err == nil {
				_, _ = ch.QueueDelete(name, false, false, false)
			}
		}
	})
	start := func(opts ...bus.HandlerOption) error {
		b, err := bus.New(context.Background(), cfg, bus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = b.Close() }()
		if err := b.Register(bus.NewHandler(name, greeted, noop, opts...)); err != nil {
			t.Fatal(err)
		}
		return b.Start(context.Background())
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	err := start(bus.Ordered())
	if err == nil || !strings.Contains(err.Error(), "rabbitmqctl delete_queue "+name) || !strings.Contains(err.Error(), "PRECONDITION_FAILED") {
		t.Fatalf("Start of an ordered handler on its old queue = %v, want the fix and the broker's reason", err)
	}
}
