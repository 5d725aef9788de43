package outbox

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
)

// consumerGroup names the relay's offset: every instance shares it, and the
// offset row's lock lets one relay forward at a time, which keeps commit
// order.
const consumerGroup = "relay"

// Relay forwards committed outbox events to the bus with Watermill's
// components/forwarder. An event is marked forwarded only after the bus
// accepted it, so a crash in between forwards it again (handlers absorb the
// duplicate); a failed publish is retried and blocks the events behind it,
// so one aggregate's events never overtake each other.
type Relay struct {
	fwd    *forwarder.Forwarder
	runErr chan error
}

// NewRelay creates the outbox tables if needed and prepares the relay,
// which forwards to out (the application's *bus.Bus).
func NewRelay(d *db.DB, out message.Publisher, cfg Config, logger *slog.Logger) (*Relay, error) {
	wmLogger := watermill.NewSlogLogger(logger.With("component", "outbox"))
	schema, offsets := schemaFor(d.Driver, cfg.BatchSize)
	sub, err := sql.NewSubscriber(sql.BeginnerFromStdSQL(d.DB), sql.SubscriberConfig{
		ConsumerGroup:  consumerGroup,
		PollInterval:   cfg.PollInterval,
		ResendInterval: cfg.PollInterval,
		SchemaAdapter:  schema,
		OffsetsAdapter: offsets,
	}, wmLogger)
	if err != nil {
		return nil, fmt.Errorf("outbox relay: %w", err)
	}
	// Now, not at start: handlers and requests may publish into the outbox
	// as soon as the bus runs.
	if err := sub.SubscribeInitialize(topic); err != nil {
		return nil, fmt.Errorf("outbox: create tables: %w", err)
	}
	fwd, err := forwarder.NewForwarder(sub, out, wmLogger, forwarder.Config{ForwarderTopic: topic})
	if err != nil {
		return nil, fmt.Errorf("outbox relay: %w", err)
	}
	return &Relay{fwd: fwd, runErr: make(chan error, 1)}, nil
}

// Start begins forwarding and returns once the relay runs.
func (r *Relay) Start(ctx context.Context) error {
	go func() { r.runErr <- r.fwd.Run(context.Background()) }() //nolint:gosec // G118: the relay outlives ctx, which bounds only start-up; Close stops it
	select {
	case <-r.fwd.Running():
		return nil
	case err := <-r.runErr:
		return fmt.Errorf("outbox relay: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops forwarding after the event in flight; what is left stays in
// the outbox for the next start.
func (r *Relay) Close() error { return r.fwd.Close() }

// Module adds the processed-events table to the migrations and provides the
// *Relay, which starts after the bus and stops before it.
var Module = fx.Module("outbox",
	db.ProvideMigrations(Migrations),
	fx.Provide(func(lc fx.Lifecycle, d *db.DB, b *bus.Bus, cfg Config, logger *slog.Logger) (*Relay, error) {
		r, err := NewRelay(d, b, cfg, logger)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.Hook{OnStart: r.Start, OnStop: func(context.Context) error { return r.Close() }})
		return r, nil
	}),
)

// Run makes the serving app build and start the relay.
var Run = fx.Invoke(func(*Relay) {})
