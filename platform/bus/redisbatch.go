package bus

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// beginBatch sends a batch's XADDs in pipelines on the publisher's client:
// the messages that reach the adapter while one pipeline is on the wire go
// out together in the next. The entries are the ones watermill-
// redisstream's publisher writes, one XADD per round trip: the same
// marshaller, stream = topic, MAXLEN ~ max_len.
func (a *redisStreamAdapter) beginBatch(context.Context) (batchSession, error) {
	return redisBatch{client: a.client, maxLen: a.cfg.MaxLen}, nil
}

type redisBatch struct {
	client *redis.Client
	maxLen int64
}

// send runs one pipeline. Redis runs every command of a pipeline, so one
// failed XADD fails the send: the entries after it are in the stream, but
// no later pipeline of the batch adds more.
func (s redisBatch) send(ctx context.Context, msgs []TopicMessage) ([]func() error, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, 0, len(msgs))
	var marshalErr error
	for _, m := range msgs {
		values, err := safeRedisMarshaller{}.Marshal(m.Topic, m.Message)
		if err != nil {
			marshalErr = fmt.Errorf("redis: marshal message %s: %w", m.Message.UUID, err)
			break
		}
		cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: m.Topic, Values: values, MaxLen: s.maxLen, Approx: true}))
	}
	if len(cmds) > 0 {
		execPipeline(ctx, pipe)
	}
	waits := make([]func() error, len(cmds))
	var firstErr error
	for i, cmd := range cmds {
		err := cmd.Err()
		if err != nil {
			err = fmt.Errorf("redis: xadd message %s: %w", msgs[i].Message.UUID, err)
			if firstErr == nil {
				firstErr = err
			}
		}
		waits[i] = func() error { return err }
	}
	if firstErr != nil {
		return waits, firstErr
	}
	return waits, marshalErr
}

func (redisBatch) end(bool) {}
