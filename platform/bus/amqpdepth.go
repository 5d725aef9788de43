package bus

import (
	"context"
	"errors"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// depths declares each handler's queue passively on a channel of the
// consumers' connection: RabbitMQ answers with the queue's ready messages
// and consumers, and creates nothing. It does not answer with unacked
// deliveries (only the management API counts them) nor with the age of a
// message, so Pending and Oldest stay nil. A queue that does not exist
// (the handler never ran) has nothing waiting.
//
// A broadcast handler's queue is exclusive to the instance that runs it,
// and named after that instance: only that instance reads it.
func (a *amqpAdapter) depths(ctx context.Context, qs []depthQuery) ([]HandlerDepth, error) {
	// amqp091 takes no context: the declares run aside, and the caller
	// goes when ctx ends. One read at a time, so a broker that stopped
	// answering holds one goroutine, not one per scrape.
	if !a.inspecting.TryLock() {
		return nil, errors.New("amqp: the previous read of queue depths has not returned yet")
	}
	type result struct {
		ds  []HandlerDepth
		err error
	}
	done := make(chan result, 1)
	go func() {
		ds, err := a.readDepths(qs)
		a.inspecting.Unlock() // before the caller may ask again
		done <- result{ds, err}
	}()
	select {
	case r := <-done:
		return r.ds, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("amqp: read queue depths: %w", ctx.Err())
	}
}

func (a *amqpAdapter) readDepths(qs []depthQuery) ([]HandlerDepth, error) {
	if !a.subConn.IsConnected() {
		return nil, errors.New("amqp: read queue depths: not connected to the broker")
	}
	conn := a.subConn.Connection()
	var ch *amqp091.Channel
	defer func() {
		if ch != nil {
			_ = ch.Close()
		}
	}()
	ds := make([]HandlerDepth, len(qs))
	for i, q := range qs {
		name, scope := q.h.name, DepthShared
		if q.h.broadcast {
			if !q.local {
				ds[i].Scope = DepthNone
				continue
			}
			name, scope = q.h.name+"."+a.instance, DepthInstance
		}
		if ch == nil {
			var err error
			if ch, err = conn.Channel(); err != nil {
				return nil, fmt.Errorf("amqp: read queue depths: open a channel: %w", err)
			}
		}
		queue, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
		if err != nil {
			// The broker closed the channel with the error; the next
			// queue needs another.
			ch = nil
			if amqpErr, ok := errors.AsType[*amqp091.Error](err); ok && amqpErr.Code == amqp091.NotFound {
				ds[i] = HandlerDepth{Scope: scope, Waiting: ptr(int64(0)), Consumers: ptr(int64(0))}
				continue
			}
			return nil, fmt.Errorf("amqp: read depth of queue %s: %w", name, err)
		}
		ds[i] = HandlerDepth{Scope: scope, Waiting: ptr(int64(queue.Messages)), Consumers: ptr(int64(queue.Consumers))}
	}
	return ds, nil
}
