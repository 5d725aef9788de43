package outbox

import (
	"context"
	"fmt"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox/internal/store"
)

// NewHandler is [bus.NewHandler] with exactly-once effects: fn runs in a
// transaction that also records (name, event id) as processed, and its ctx
// carries that transaction, so every d.Q(ctx) and d.InTx inside fn joins it,
// as does [Publisher]. An event already recorded is acked without running
// fn; a failure rolls back both the effects and the record, so the retry
// starts clean.
func NewHandler[T any](d *db.DB, name string, topic bus.Topic[T], fn func(context.Context, bus.Event[T]) error, opts ...bus.HandlerOption) bus.Handler {
	return bus.NewHandler(name, topic, func(ctx context.Context, e bus.Event[T]) error {
		return once(ctx, d, name, e.EventID, func(ctx context.Context) error { return fn(ctx, e) })
	}, opts...)
}

// NewPatternHandler is [bus.NewPatternHandler] with the exactly-once effects
// of [NewHandler].
func NewPatternHandler(d *db.DB, name, pattern string, fn func(context.Context, bus.RawEvent) error, opts ...bus.HandlerOption) bus.Handler {
	return bus.NewPatternHandler(name, pattern, func(ctx context.Context, e bus.RawEvent) error {
		return once(ctx, d, name, e.EventID, func(ctx context.Context) error { return fn(ctx, e) })
	}, opts...)
}

// once runs effects in a transaction that records (handler, eventID) as
// processed, unless that record exists already.
func once(ctx context.Context, d *db.DB, handler, eventID string, effects func(context.Context) error) error {
	return d.InTx(ctx, func(ctx context.Context, _ *db.Tx) error {
		fresh, err := store.New(d.Q(ctx)).MarkProcessed(ctx, store.MarkProcessedParams{
			Handler: handler, EventID: eventID, ProcessedAt: db.Now(),
		})
		if err != nil {
			return fmt.Errorf("record event %s as processed by %s: %w", eventID, handler, err)
		}
		if fresh == 0 {
			return nil // a redelivery: the effects are already committed
		}
		return effects(ctx)
	})
}
