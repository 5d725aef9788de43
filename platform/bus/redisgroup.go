package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
)

// redisGroupSubscriber is a Watermill subscriber for one handler's Redis
// consumer group: n consumers (the handler's concurrency) reading the
// handler's stream. It replaces watermill-redisstream's subscriber for group
// handlers because v1.4.5 reads one entry per round trip (XREADGROUP COUNT 1,
// pkg/redisstream/subscriber.go:328, handing on xs.Messages[0] at :259) and
// acks each entry with its own XACK round trip (:595), which caps a handler
// at one entry per two round trips whatever the handler costs. The entries
// stay what watermill-redisstream's publisher writes and its unmarshaller
// reads (safeRedisMarshaller).
//
// Each consumer reads up to read_count/n entries per XREADGROUP and hands them
// on one at a time, in stream order, waiting for each message's ack or nack
// before the next (a nack sends a copy again at once). The ids of acked
// messages are XACKed in one command pipelined with the next read, or alone
// once the oldest has waited redisAckFlushInterval. An entry is XACKed only
// after its handler acked it: a crash loses at most unsent XACKs, whose
// entries are then redelivered (at least once, as before).
//
// Besides reading, a consumer
//   - claims pending entries idle for max_idle_time (a dead consumer's) with
//     XAUTOCLAIM every claim_interval, in batches of read_count;
//   - reads its own pending entries (XREADGROUP from id 0) when it starts and
//     after any failed round trip, so entries whose read reply was lost to a
//     dropped connection are delivered at once, not after max_idle_time;
//   - re-claims the entries it holds (read, waiting or being handled) once
//     they are max_idle_time/2 old, resetting their idle time, so that a batch
//     waiting behind slow handlers is not claimed by another consumer; an
//     entry another consumer already claimed is dropped from the batch;
//   - on Close, XACKs what was acked and marks the entries it read but never
//     handed on as idle for max_idle_time, so other consumers claim them at
//     their next claim_interval instead of max_idle_time later;
//   - retries every failed round trip with backoff (100 ms to 5 s), logging
//     each failure, and creates the group again (at $) if it disappeared;
//     it never stops before Close.
type redisGroupSubscriber struct {
	client    *redis.Client
	group     string
	consumers []string
	cfg       RedisConfig
	logger    watermill.LoggerAdapter

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

// redisAckFlushInterval is how long an acked entry waits for its XACK when
// no read comes first to carry it (slow handlers).
const redisAckFlushInterval = 100 * time.Millisecond

// redisShutdownTimeout bounds the last XACK and release at Close.
const redisShutdownTimeout = 2 * time.Second

// Removal of consumers that left the group, as watermill-redisstream does:
// every redisConsumerCheckInterval, consumers idle for redisConsumerTimeout
// with nothing pending are deleted, so instance names do not pile up.
const (
	redisConsumerCheckInterval = 5 * time.Minute
	redisConsumerTimeout       = 10 * time.Minute
)

// newRedisGroupSubscriber reads group with one consumer per name; it closes
// client on Close.
func newRedisGroupSubscriber(client *redis.Client, group string, consumers []string, cfg RedisConfig, logger watermill.LoggerAdapter) *redisGroupSubscriber {
	// read_count is the handler's read-ahead in this instance, as an AMQP
	// prefetch is: one consumer's batch waits behind its slow handler
	// while other consumers could take it.
	cfg.ReadCount = max(1, cfg.ReadCount/max(len(consumers), 1))
	return &redisGroupSubscriber{client: client, group: group, consumers: consumers, cfg: cfg, logger: logger, closing: make(chan struct{})}
}

// newRedisGroupClient is a client for n consumers: a connection each and one
// spare, pipelines that may carry a blocking read, and no hidden retries (a
// retried read would hide that the first one's reply was lost).
func newRedisGroupClient(cfg RedisConfig, n int, tlsConfig *tls.Config) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: cfg.Addr, Password: cfg.Password, DB: cfg.DB, TLSConfig: tlsConfig,
		PoolSize: n + 1,
		// go-redis extends the read timeout of a lone blocking command, not
		// of a pipeline that ends with one.
		ReadTimeout: cfg.BlockTime + 3*time.Second,
		MaxRetries:  -1,
	})
}

func (s *redisGroupSubscriber) Subscribe(ctx context.Context, stream string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("redis subscriber closed")
	}
	if err := s.createGroup(ctx, stream); err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	var consumers sync.WaitGroup
	for i, name := range s.consumers {
		c := &groupConsumer{
			s: s, name: name, stream: stream, out: out,
			tidy:    i == 0,
			history: true, historyFrom: "0",
			claimFrom: "0-0",
			fields:    watermill.LogFields{"topic": stream, "consumer_group": s.group, "consumer": name},
		}
		consumers.Go(func() { c.run(ctx) })
	}
	s.wg.Go(func() { consumers.Wait(); close(out) })
	return out, nil
}

// createGroup creates the group at the stream's end ($), and the stream if
// needed: a new handler gets the events published from now on.
func (s *redisGroupSubscriber) createGroup(ctx context.Context, stream string) error {
	err := s.client.XGroupCreateMkStream(ctx, stream, s.group, "$").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redis: create consumer group %s on %s: %w", s.group, stream, err)
	}
	return nil
}

// Close stops the consumers, each after its current read (at most
// block_time), sends their last XACKs and closes the client.
func (s *redisGroupSubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	return s.client.Close()
}

// groupConsumer is one consumer's read loop; only its goroutine touches it.
type groupConsumer struct {
	s      *redisGroupSubscriber
	name   string
	stream string
	out    chan<- *message.Message
	tidy   bool // removes consumers that left the group
	fields watermill.LogFields

	batch  []redis.XMessage // entries read and not yet acked, in order; batch[0] is being delivered
	held   bool             // batch[0] is with the handler
	readAt time.Time        // when batch was read or last re-claimed

	acks    []string  // acked by the handler, not yet XACKed
	ackedAt time.Time // when acks[0] was acked

	history     bool   // the next read is of this consumer's own pending entries
	historyFrom string // ... after this id
	claimFrom   string // XAUTOCLAIM cursor; "0-0" starts a new pass
	nextClaim   time.Time
	nextTidy    time.Time
}

func (c *groupConsumer) run(ctx context.Context) {
	defer c.stop()
	tick := time.NewTicker(max(min(redisAckFlushInterval, c.s.cfg.MaxIdleTime/4), time.Millisecond))
	defer tick.Stop()
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval, retry.MaxInterval = 100*time.Millisecond, 5*time.Second
	c.nextTidy = time.Now().Add(redisConsumerCheckInterval)
	for !c.done(ctx) {
		if err := c.fetch(ctx); err != nil {
			if c.done(ctx) {
				return
			}
			wait := retry.NextBackOff()
			c.s.logger.Error("Redis read failed, retrying", err, c.fields.Add(watermill.LogFields{"retry_in": wait.String()}))
			// The reply may be lost with entries it handed to this consumer.
			c.history, c.historyFrom = true, "0"
			if isNoGroup(err) {
				c.s.logger.Error("Redis consumer group missing (stream deleted, or Redis restarted without its data): creating it at the stream's end", err, c.fields)
				if err := c.s.createGroup(ctx, c.stream); err != nil {
					c.s.logger.Error("Redis consumer group not created, retrying", err, c.fields)
				}
			}
			select {
			case <-time.After(wait):
			case <-c.s.closing:
			case <-ctx.Done():
			}
			continue
		}
		retry.Reset()
		for len(c.batch) > 0 {
			if !c.deliver(ctx, tick.C) {
				return
			}
		}
		if c.tidy && time.Now().After(c.nextTidy) {
			c.removeGoneConsumers(ctx)
			c.nextTidy = time.Now().Add(redisConsumerCheckInterval)
		}
	}
}

func (c *groupConsumer) done(ctx context.Context) bool {
	select {
	case <-c.s.closing:
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// fetch fills the empty batch in one round trip: the pending XACK, then
// either this consumer's own pending entries, a claim of idle entries, or a
// blocking read of new ones. An empty batch after a read is not an error.
func (c *groupConsumer) fetch(ctx context.Context) error {
	cfg := c.s.cfg
	pipe := c.s.client.Pipeline()
	var ack *redis.IntCmd
	if len(c.acks) > 0 {
		ack = pipe.XAck(ctx, c.stream, c.s.group, c.acks...)
	}
	var read *redis.XStreamSliceCmd
	var claim *redis.XAutoClaimCmd
	args := &redis.XReadGroupArgs{Group: c.s.group, Consumer: c.name, Count: int64(cfg.ReadCount)}
	switch {
	case c.history:
		args.Streams, args.Block = []string{c.stream, c.historyFrom}, -1
		read = pipe.XReadGroup(ctx, args)
	case !time.Now().Before(c.nextClaim):
		claim = pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: c.stream, Group: c.s.group, Consumer: c.name,
			MinIdle: cfg.MaxIdleTime, Start: c.claimFrom, Count: int64(cfg.ReadCount),
		})
	default:
		args.Streams, args.Block = []string{c.stream, ">"}, cfg.BlockTime
		read = pipe.XReadGroup(ctx, args)
	}
	execPipeline(ctx, pipe)
	if ack != nil {
		if err := ack.Err(); err != nil {
			return fmt.Errorf("redis: xack %s: %w", c.stream, err)
		}
		c.acks = c.acks[:0]
	}
	c.readAt = time.Now()
	if claim != nil {
		entries, next, err := claim.Result()
		if err != nil {
			return fmt.Errorf("redis: claim idle entries of %s: %w", c.stream, err)
		}
		if next == "0-0" { // the pass is over
			c.nextClaim = c.readAt.Add(cfg.ClaimInterval)
		}
		c.claimFrom, c.batch = next, entries
		if len(entries) > 0 {
			c.s.logger.Info("Claimed idle Redis entries", c.fields.Add(watermill.LogFields{"entries": len(entries)}))
		}
		return nil
	}
	streams, err := read.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis: xreadgroup %s: %w", c.stream, err)
	}
	c.batch = nil
	if len(streams) > 0 {
		c.batch = streams[0].Messages
	}
	if c.history {
		if len(c.batch) > 0 {
			c.historyFrom = c.batch[len(c.batch)-1].ID
		}
		c.history = len(c.batch) == cfg.ReadCount // a full page: there may be more
	}
	return nil
}

// deliver hands batch[0] on until it is acked, then queues its XACK and
// drops it from the batch. It returns false when the subscriber closes.
func (c *groupConsumer) deliver(ctx context.Context, tick <-chan time.Time) bool {
	xm := c.batch[0]
	if len(xm.Values) == 0 {
		// Read from the pending list after the stream dropped it (max_len
		// trimming, XDEL): nothing left to deliver.
		c.ack(xm.ID)
		return true
	}
	msg, err := safeRedisMarshaller{}.Unmarshal(xm.Values)
	if err != nil { // not expected: the marshaller turns failures into poison
		msg = undecodableRedisEntry(xm.Values, err)
	}
	for {
		msg.SetContext(ctx)
		for sent := false; !sent; {
			select {
			case c.out <- msg:
				sent = true
			case <-tick:
				c.housekeep(ctx)
			case <-c.s.closing:
				return false
			case <-ctx.Done():
				return false
			}
		}
		c.held = true
	wait:
		for {
			select {
			case <-msg.Acked():
				c.held = false
				c.ack(xm.ID)
				return true
			case <-msg.Nacked():
				c.held = false
				msg = copyMessage(msg)
				break wait
			case <-tick:
				c.housekeep(ctx)
			case <-c.s.closing:
				return false
			case <-ctx.Done():
				return false
			}
		}
	}
}

// ack queues the XACK of batch[0], which the handler acked.
func (c *groupConsumer) ack(id string) {
	if len(c.acks) == 0 {
		c.ackedAt = time.Now()
	}
	c.acks = append(c.acks, id)
	c.batch = c.batch[1:]
}

// housekeep runs while a handler works: it sends XACKs that waited long
// enough and re-claims the batch before another consumer could.
func (c *groupConsumer) housekeep(ctx context.Context) {
	now := time.Now()
	if len(c.acks) > 0 && now.Sub(c.ackedAt) >= redisAckFlushInterval {
		if err := c.s.client.XAck(ctx, c.stream, c.s.group, c.acks...).Err(); err != nil {
			c.s.logger.Error("Redis XACK failed, retrying with the next one", err, c.fields)
		} else {
			c.acks = c.acks[:0]
		}
	}
	if len(c.batch) > 0 && now.Sub(c.readAt) >= c.s.cfg.MaxIdleTime/2 {
		c.reclaim(ctx, now)
	}
}

// reclaim resets the idle time of the batch's entries. It claims only
// entries idle for at least mineIdle: an entry another consumer claimed since
// has been idle for less, so it is not taken back but dropped from the batch
// (unless it is being delivered).
func (c *groupConsumer) reclaim(ctx context.Context, now time.Time) {
	ids := make([]string, len(c.batch))
	for i, xm := range c.batch {
		ids[i] = xm.ID
	}
	kept, err := c.s.client.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream: c.stream, Group: c.s.group, Consumer: c.name,
		MinIdle: c.mineIdle(now), Messages: ids,
	}).Result()
	if err != nil {
		c.s.logger.Error("Redis XCLAIM of the entries being handled failed, retrying", err, c.fields)
		return
	}
	c.readAt = now
	if len(kept) == len(ids) {
		return
	}
	mine := make(map[string]bool, len(kept))
	for _, id := range kept {
		mine[id] = true
	}
	batch := c.batch[:1] // the entry being delivered stays
	for _, xm := range c.batch[1:] {
		if mine[xm.ID] {
			batch = append(batch, xm)
		}
	}
	c.s.logger.Info("Redis entries claimed by another consumer dropped from the batch", c.fields.Add(watermill.LogFields{"entries": len(c.batch) - len(batch)}))
	c.batch = batch
}

// mineIdle separates the entries this consumer still owns from those
// another consumer claimed: an entry of the batch read or re-claimed e ago
// has been idle for about e if it is still this consumer's, and for at most
// e - max_idle_time if another consumer claimed it (it can only once idle
// for max_idle_time). Halfway between leaves room for clocks and latency.
func (c *groupConsumer) mineIdle(now time.Time) time.Duration {
	return max(now.Sub(c.readAt)-c.s.cfg.MaxIdleTime/2, 0)
}

// stop sends the last XACKs and releases the entries read but not handed
// on, so other consumers claim them at their next claim_interval.
func (c *groupConsumer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), redisShutdownTimeout)
	defer cancel()
	unsent := c.batch
	if c.held {
		unsent = unsent[1:] // with the handler: claimed after max_idle_time, as a dead consumer's
	}
	pipe := c.s.client.Pipeline()
	if len(c.acks) > 0 {
		pipe.XAck(ctx, c.stream, c.s.group, c.acks...)
	}
	if len(unsent) > 0 {
		args := []any{"xclaim", c.stream, c.s.group, c.name, c.mineIdle(time.Now()).Milliseconds()}
		for _, xm := range unsent {
			args = append(args, xm.ID)
		}
		args = append(args, "idle", c.s.cfg.MaxIdleTime.Milliseconds(), "justid")
		pipe.Do(ctx, args...)
	}
	if pipe.Len() == 0 {
		return
	}
	if _, err := pipe.Exec(ctx); err != nil {
		c.s.logger.Error("Redis XACK or release at close failed: the entries are delivered again after max_idle_time", err,
			c.fields.Add(watermill.LogFields{"acks": len(c.acks), "unsent": len(unsent)}))
	}
}

// removeGoneConsumers deletes the group's consumers that have been idle for
// redisConsumerTimeout and hold no pending entry.
func (c *groupConsumer) removeGoneConsumers(ctx context.Context) {
	consumers, err := c.s.client.XInfoConsumers(ctx, c.stream, c.s.group).Result()
	if err != nil {
		c.s.logger.Error("Redis XINFO CONSUMERS failed", err, c.fields)
		return
	}
	for _, gone := range consumers {
		if gone.Idle < redisConsumerTimeout || gone.Pending > 0 {
			continue
		}
		if err := c.s.client.XGroupDelConsumer(ctx, c.stream, c.s.group, gone.Name).Err(); err != nil {
			c.s.logger.Error("Redis XGROUP DELCONSUMER failed", err, c.fields.Add(watermill.LogFields{"gone": gone.Name}))
		}
	}
}

func isNoGroup(err error) bool { return strings.Contains(err.Error(), "NOGROUP") }

// redisConsumerNames are the consumer names of n consumers of one instance:
// the instance name, then instance-2, instance-3, ...
func redisConsumerNames(instance string, n int) []string {
	names := make([]string, max(n, 1))
	for i := range names {
		names[i] = instance
		if i > 0 {
			names[i] += "-" + strconv.Itoa(i+1)
		}
	}
	return names
}
