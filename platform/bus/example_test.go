package bus_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/example/monolith/platform/bus"
)

type OrderPlacedV1 struct {
	OrderID string `json:"order_id"`
	Total   int    `json:"total_cents"`
}

type OrderShippedV1 struct {
	OrderID string `json:"order_id"`
	Carrier string `json:"carrier"`
}

var (
	orderPlaced  = bus.NewTopic[OrderPlacedV1]("shop.order.placed", 1)
	orderShipped = bus.NewTopic[OrderShippedV1]("shop.order.shipped", 1)
)

// An audit handler subscribed to every topic of the shop context, decoding
// the one topic it knows more about.
func ExampleNewPatternHandler() {
	ctx := context.Background()
	b, err := bus.New(ctx, bus.DefaultConfig(), bus.Options{})
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	audit := bus.NewPatternHandler("audit.record", "shop.#", func(_ context.Context, e bus.RawEvent) error {
		defer wg.Done()
		if placed, ok, err := bus.As(e, orderPlaced); ok {
			if err != nil {
				return err
			}
			fmt.Printf("%s %s: %d cents\n", e.EventType, e.AggregateID, placed.Payload.Total)
			return nil
		}
		fmt.Printf("%s %s: %s\n", e.EventType, e.AggregateID, e.Payload)
		return nil
	})
	if err := b.Register(audit); err != nil {
		panic(err)
	}
	if err := b.Start(ctx); err != nil {
		panic(err)
	}
	defer func() { _ = b.Close() }()

	_ = bus.Publish(ctx, b, orderPlaced, "o-1", OrderPlacedV1{OrderID: "o-1", Total: 4200})
	_ = bus.Publish(ctx, b, orderShipped, "o-1", OrderShippedV1{OrderID: "o-1", Carrier: "post"})
	wg.Wait()
	// Output:
	// shop.order.placed o-1: 4200 cents
	// shop.order.shipped o-1: {"order_id":"o-1","carrier":"post"}
}
