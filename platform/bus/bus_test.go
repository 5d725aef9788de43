package bus_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/testenv"
)

type greeting struct {
	Text string `json:"text"`
}

var greeted = bus.NewTopic[greeting]("test.greeting.sent", 1)

func TestNewTopicRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "user.registered", "Identity.user.registered", "identity.user.registered.now", "identity..registered"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewTopic(%q) did not panic", name)
				}
			}()
			bus.NewTopic[greeting](name, 1)
		}()
	}
	if greeted.Context() != "test" || greeted.Aggregate() != "greeting" || greeted.Version() != 1 {
		t.Fatalf("topic parts = %q %q %d", greeted.Context(), greeted.Aggregate(), greeted.Version())
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	tests := []struct {
		mutate func(*bus.Config)
		want   string
	}{
		{func(c *bus.Config) { c.Adapter = "kafka" }, `bus.adapter: unknown adapter "kafka"`},
		{func(c *bus.Config) { c.Adapter, c.AMQP.URL = bus.AdapterAMQP, "" }, "bus.amqp.url: required"},
		{func(c *bus.Config) { c.Adapter, c.Redis.Addr = bus.AdapterRedisStream, "" }, "bus.redisstream.addr: required"},
		{func(c *bus.Config) { c.Adapter, c.Redis.ReadCount = bus.AdapterRedisStream, 0 }, "bus.redisstream.read_count: must be >= 1, got 0"},
		{func(c *bus.Config) { c.Retry.Multiplier = 0.5 }, "bus.retry.multiplier"},
		{func(c *bus.Config) { c.HandlerTimeout = 0 }, "bus.handler_timeout"},
		{func(c *bus.Config) { c.Concurrency = 0 }, "bus.concurrency: must be >= 1, got 0"},
		{func(c *bus.Config) { c.Handlers = map[string]bus.HandlerConfig{"test.greet": {}} }, "bus.handlers.test.greet.concurrency: must be >= 1, got 0"},
		{func(c *bus.Config) { c.Retry.RescheduleBeyond = -time.Second }, "bus.retry.reschedule_beyond: must be >= 0"},
		{func(c *bus.Config) { c.Adapter, c.AMQP.QueueType = bus.AdapterAMQP, "stream" }, `bus.amqp.queue_type: unknown queue type "stream"`},
		{func(c *bus.Config) {
			c.Adapter, c.AMQP.QueueType, c.AMQP.Durable = bus.AdapterAMQP, bus.QueueQuorum, false
		}, "bus.amqp.queue_type: quorum queues are always durable"},
		{func(c *bus.Config) { c.Adapter, c.AMQP.DeliveryLimit = bus.AdapterAMQP, 5 }, "bus.amqp.delivery_limit: applies to quorum queues only"},
		{func(c *bus.Config) {
			c.Bridges = map[string]bus.BridgeConfig{"eu": {Topics: "identity.#", Adapter: bus.AdapterAMQP}}
		}, "bus.bridges.eu.url: required"},
		{func(c *bus.Config) {
			c.Bridges = map[string]bus.BridgeConfig{"eu": {Topics: "identity.*x", Adapter: bus.AdapterRedisStream, Addr: "r:6379"}}
		}, "bus.bridges.eu.topics: want a topic name or a pattern"},
		{func(c *bus.Config) { c.Bridges = map[string]bus.BridgeConfig{"EU": {Topics: "#", Adapter: "kafka"}} }, "bus.bridges.EU.adapter: want amqp, redisstream or nats"},
	}
	for _, tt := range tests {
		cfg := bus.DefaultConfig()
		tt.mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, tt.want)
		}
	}
	if err := bus.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
}

func TestUnreachableBrokerFailsStartUpWithoutLeakingCredentials(t *testing.T) {
	for _, adapter := range []string{bus.AdapterAMQP, bus.AdapterRedisStream} {
		t.Run(adapter, func(t *testing.T) {
			cfg := bus.DefaultConfig()
			cfg.Adapter = adapter
			cfg.AMQP.URL = "amqp://admin:s3cret@127.0.0.1:1/"
			cfg.Redis.Addr, cfg.Redis.Password = "127.0.0.1:1", "s3cret"
			cfg.ConnectTimeout = 700 * time.Millisecond
			var logs bytes.Buffer
			start := time.Now()
			_, err := bus.New(context.Background(), cfg, bus.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err == nil {
				t.Fatal("New succeeded with an unreachable broker")
			}
			if !strings.Contains(err.Error(), "cannot connect to "+strings.TrimSuffix(adapter, "stream")) {
				t.Fatalf("error does not say what failed: %v", err)
			}
			if time.Since(start) < cfg.ConnectTimeout {
				t.Fatalf("gave up after %s, before retrying for connect_timeout", time.Since(start))
			}
			if !strings.Contains(logs.String(), "Broker unreachable, retrying") {
				t.Fatalf("retries were not logged:\n%s", logs.String())
			}
			if strings.Contains(err.Error()+logs.String(), "s3cret") {
				t.Fatalf("password leaked:\n%v\n%s", err, logs.String())
			}
		})
	}
}

func TestRegisterRejectsBadHandlers(t *testing.T) {
	b, err := bus.New(context.Background(), bus.DefaultConfig(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	noop := func(context.Context, bus.Event[greeting]) error { return nil }
	if err := b.Register(bus.NewHandler("Bad Name", greeted, noop)); err == nil {
		t.Error("a handler name with spaces was accepted")
	}
	if err := b.Register(bus.NewHandler("test.greet", greeted, noop), bus.NewHandler("test.greet", greeted, noop)); err == nil {
		t.Error("a duplicate handler name was accepted")
	}
	if got := b.Handlers(); len(got) != 1 || got[0].Name() != "test.greet" || got[0].Topic() != greeted.Name() {
		t.Errorf("Handlers() = %+v", got)
	}
}

func TestEnvelopeAndLogsCarryIDs(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(bus.NewLogHandler(slog.NewTextHandler(&logs, nil)))
	b, err := bus.New(context.Background(), bus.DefaultConfig(), bus.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()

	got := make(chan bus.Event[greeting], 2)
	echoed := bus.NewTopic[greeting]("test.greeting.echoed", 3)
	err = b.Register(
		bus.NewHandler("test.echo", greeted, func(ctx context.Context, e bus.Event[greeting]) error {
			logger.InfoContext(ctx, "echoing")
			got <- e
			return bus.Publish(ctx, b, echoed, e.AggregateID, greeting{Text: e.Payload.Text + "!"})
		}),
		bus.NewHandler("test.record", echoed, func(_ context.Context, e bus.Event[greeting]) error {
			got <- e
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := bus.WithCorrelationID(context.Background(), "req-42")
	if err := bus.Publish(ctx, b, greeted, "g-1", greeting{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	first, second := <-got, <-got
	if first.EventType != greeted.Name() || first.AggregateID != "g-1" || first.AggregateType != "greeting" ||
		first.Source != "test" || first.SchemaVersion != 1 || first.CorrelationID != "req-42" || first.CausationID != "" {
		t.Fatalf("first envelope = %+v", first.Envelope)
	}
	if len(first.EventID) != 36 || first.EventID[14] != '7' {
		t.Fatalf("event id %q is not a UUIDv7", first.EventID)
	}
	if time.Since(first.OccurredAt) > time.Minute || first.OccurredAt.Location() != time.UTC {
		t.Fatalf("occurred at %v", first.OccurredAt)
	}
	if second.Payload.Text != "hi!" || second.CorrelationID != "req-42" || second.CausationID != first.EventID || second.SchemaVersion != 3 {
		t.Fatalf("second envelope = %+v payload %+v", second.Envelope, second.Payload)
	}
	line := logs.lineWith("echoing")
	for _, want := range []string{"event_id=" + first.EventID, "correlation_id=req-42", "handler=test.echo"} {
		if !strings.Contains(line, want) {
			t.Fatalf("handler log line %q lacks %q", line, want)
		}
	}
}

func TestCheck(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Adapter, cfg.Redis.Addr = bus.AdapterRedisStream, testenv.RequireRedis(t)
	b, err := bus.New(context.Background(), cfg, bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(context.Background()); err != nil {
		t.Fatalf("Check on a live bus: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Check(context.Background()); err == nil {
		t.Fatal("Check on a closed bus succeeded")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lineWith(substr string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}

func (s *syncBuffer) linesWith(substr string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	for _, line := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(line, substr) {
			lines = append(lines, line)
		}
	}
	return lines
}

// TestRetryWaitsTheConfiguredBackoff: the waits between attempts are
// bus.retry's schedule, not a later step of it (Watermill v1.5.2's Retry
// with a ShouldRetry hook waits 400ms, then 6.4s, for this one).
func TestRetryWaitsTheConfiguredBackoff(t *testing.T) {
	topic := bus.NewTopic[int]("bustest.backoff.happened", 1)
	cfg := bus.DefaultConfig()
	cfg.Retry = bus.RetryConfig{MaxRetries: 2, InitialInterval: 100 * time.Millisecond, Multiplier: 4, MaxInterval: 10 * time.Second}
	b, err := bus.New(context.Background(), cfg, bus.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	runs := make(chan time.Time, 3)
	err = b.Register(bus.NewHandler("bustest.backoff", topic, func(context.Context, bus.Event[int]) error {
		runs <- time.Now()
		if len(runs) < 3 {
			return errors.New("not yet")
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(context.Background(), b, topic, "a", 1); err != nil {
		t.Fatal(err)
	}
	at := make([]time.Time, 3)
	for i := range at {
		select {
		case at[i] = <-runs:
		case <-time.After(10 * time.Second):
			t.Fatalf("attempt %d never ran", i+1)
		}
	}
	// Lower bounds are the schedule; upper ones are 3x it, far below the
	// next step.
	for i, want := range []time.Duration{100 * time.Millisecond, 400 * time.Millisecond} {
		if gap := at[i+1].Sub(at[i]); gap < want || gap > 3*want {
			t.Errorf("attempt %d ran %s after attempt %d, want %s", i+2, gap, i+1, want)
		}
	}
}
