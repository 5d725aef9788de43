package bus

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// adapter is one pub/sub backend. Every handler gets its own subscriber so
// that the queue or consumer group can be named after the handler.
type adapter interface {
	publisher() message.Publisher
	// subscriber returns the subscriber for h; owned is false when it is
	// shared and must outlive h (the adapter closes it).
	subscriber(h Handler) (sub message.Subscriber, owned bool, err error)
	// check reports whether the broker connection is usable.
	check(ctx context.Context) error
	// close releases what the adapter opened, after the router stopped.
	close() error
}

func newAdapter(ctx context.Context, cfg Config, instance string, logger watermill.LoggerAdapter) (adapter, error) {
	switch cfg.Adapter {
	case AdapterAMQP:
		return newAMQP(ctx, cfg, instance, logger)
	case AdapterRedisStream:
		return newRedisStream(ctx, cfg, instance, logger)
	case AdapterNATS:
		return newNATS(ctx, cfg, instance, logger)
	default:
		return newGoChannel(cfg), nil
	}
}
