package bus

import (
	"context"
	"errors"
	"time"
)

// HandlerDepth is what waits for one handler, as far as its adapter can
// tell: see [Bus.Depths]. A nil field is one the adapter cannot tell.
type HandlerDepth struct {
	Handler   string
	Topic     string
	Broadcast bool
	// Scope is whose messages were counted.
	Scope DepthScope
	// Waiting is how many messages wait to be delivered to a consumer of
	// the handler: the queue's ready messages (AMQP), the consumer group's
	// lag (Redis), the handler's in-process queue (gochannel).
	Waiting *int64
	// Pending is how many were delivered and are not acked yet: being
	// handled, retried, or held back by a consumer (AMQP's prefetch, a
	// Redis consumer's batch). RabbitMQ does not report it over AMQP, so it
	// is nil there.
	Pending *int64
	// Oldest is the age of the oldest message waiting or pending: 0 when
	// there is none, nil when the adapter cannot tell (AMQP).
	Oldest *time.Duration
	// Consumers is how many consumers the handler's queue or group has,
	// across instances (a Redis group keeps a consumer that left for up to
	// 10 minutes); nil on gochannel.
	Consumers *int64
}

// DepthScope says whose messages a [HandlerDepth] counts.
type DepthScope string

// Scopes of a [HandlerDepth].
const (
	// DepthShared is the handler's queue or consumer group on the broker,
	// which every instance shares: each instance reports the same numbers.
	DepthShared DepthScope = "shared"
	// DepthInstance is a queue of this process only: every handler's on
	// gochannel, a broadcast handler's own queue on AMQP.
	DepthInstance DepthScope = "instance"
	// DepthNone is a handler whose queue this process cannot read: a
	// broadcast handler on Redis (each instance reads the stream on its
	// own, and Redis keeps no position for it), another instance's
	// broadcast queue on AMQP, another process's queues on gochannel. Its
	// counts are nil.
	DepthNone DepthScope = "none"
)

// depthQuery is a handler whose depth is asked for, and whether it is
// registered on this bus (its in-process or private queues are then ours).
type depthQuery struct {
	h     Handler
	local bool
}

// depthReader is an adapter that can tell handlers' depths; every adapter
// is one.
type depthReader interface {
	// depths returns one HandlerDepth per query, in order, with Handler,
	// Topic and Broadcast left for the caller.
	depths(ctx context.Context, qs []depthQuery) ([]HandlerDepth, error)
}

// Depths reports, for every registered handler, what waits for it: see
// [HandlerDepth]. It reads the broker (a passive queue declare per handler
// on AMQP; XINFO GROUPS, XPENDING and XRANGE in two round trips on Redis)
// or the in-process queues (gochannel), and returns when ctx ends.
func (b *Bus) Depths(ctx context.Context) ([]HandlerDepth, error) {
	return b.DepthsOf(ctx, b.Handlers())
}

// DepthsOf is [Bus.Depths] for hs, which need not be registered on b: a
// command inspecting a running deployment connects a bus of its own and
// asks for the handlers the application registers. Queues only their own
// process can read (gochannel's, broadcast queues) are then reported with
// [DepthNone].
func (b *Bus) DepthsOf(ctx context.Context, hs []Handler) ([]HandlerDepth, error) {
	registered := map[string]bool{}
	for _, h := range b.Handlers() {
		registered[h.name] = true
	}
	qs := make([]depthQuery, len(hs))
	for i, h := range hs {
		if h.poison {
			h.topic = b.cfg.PoisonTopic
		}
		qs[i] = depthQuery{h, registered[h.name]}
	}
	reader, ok := b.adapter.(depthReader)
	if !ok {
		return nil, errors.New("bus: the adapter cannot tell queue depths")
	}
	ds, err := reader.depths(ctx, qs)
	if err != nil {
		return nil, err
	}
	for i, q := range qs {
		ds[i].Handler, ds[i].Topic, ds[i].Broadcast = q.h.name, q.h.topic, q.h.broadcast
	}
	return ds, nil
}

// depths reads each registered handler's queue in this process.
func (a *goChannelAdapter) depths(_ context.Context, qs []depthQuery) ([]HandlerDepth, error) {
	now := time.Now()
	ds := make([]HandlerDepth, len(qs))
	for i, q := range qs {
		if !q.local {
			ds[i].Scope = DepthNone
			continue
		}
		a.mu.RLock()
		l := a.queues[q.h.name]
		a.mu.RUnlock()
		var waiting, inflight int
		var oldest time.Time
		if l != nil { // nil: not subscribed (yet, or any more)
			waiting, inflight, oldest = l.depth()
		}
		age := time.Duration(0)
		if !oldest.IsZero() {
			age = max(now.Sub(oldest), 0)
		}
		ds[i] = HandlerDepth{Scope: DepthInstance, Waiting: ptr(int64(waiting)), Pending: ptr(int64(inflight)), Oldest: &age}
	}
	return ds, nil
}

func ptr[T any](v T) *T { return &v }

var (
	_ depthReader = (*goChannelAdapter)(nil)
	_ depthReader = (*amqpAdapter)(nil)
	_ depthReader = (*redisStreamAdapter)(nil)
)
