package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// depths reads each group handler's consumer group in two round trips:
// TIME, XINFO GROUPS per stream and an XPENDING summary per group, then an
// XRANGE for the first entry each group has not read. Waiting is the
// group's lag (entries not yet delivered to it; nil when Redis cannot
// compute it, after entries it had not read were deleted), Pending its
// pending entries (read by a consumer and not acked: being handled, or
// waiting in a consumer's batch), Consumers its consumers. Oldest is the age
// of the oldest pending or undelivered entry, from the time in its id
// (when it was added) and Redis's clock. A stream or group that does not
// exist has nothing waiting.
//
// A broadcast handler reads the stream without a group, from where its
// instance started: Redis keeps nothing to read its depth from.
//
// A pattern handler's depth adds up its group on every stream it reads:
// waiting and pending are summed, consumers and age are the largest.
func (a *redisStreamAdapter) depths(ctx context.Context, qs []depthQuery) ([]HandlerDepth, error) {
	var (
		flat  []depthQuery
		owner []int // index in qs of each flat query
	)
	for i, q := range qs {
		if !q.h.pattern {
			flat, owner = append(flat, q), append(owner, i)
			continue
		}
		for _, t := range expandPattern(q.h.topic) {
			one := q
			one.h.topic, one.h.pattern = t, false
			flat, owner = append(flat, one), append(owner, i)
		}
	}
	parts, err := a.topicDepths(ctx, flat)
	if err != nil {
		return nil, err
	}
	ds := make([]HandlerDepth, len(qs))
	seen := make([]bool, len(qs))
	for j, d := range parts {
		i := owner[j]
		if !seen[i] {
			ds[i], seen[i] = d, true
			continue
		}
		ds[i] = HandlerDepth{
			Scope: d.Scope, Waiting: sumOf(ds[i].Waiting, d.Waiting), Pending: sumOf(ds[i].Pending, d.Pending),
			Consumers: maxOf(ds[i].Consumers, d.Consumers), Oldest: maxOf(ds[i].Oldest, d.Oldest),
		}
	}
	for i, q := range qs {
		if !seen[i] { // a pattern matching no declared topic: nothing waits
			ds[i] = HandlerDepth{Scope: DepthShared, Waiting: ptr(int64(0)), Pending: ptr(int64(0)), Consumers: ptr(int64(0)), Oldest: ptr(time.Duration(0))}
			if q.h.broadcast {
				ds[i] = HandlerDepth{Scope: DepthNone}
			}
		}
	}
	return ds, nil
}

// sumOf adds two counts; nil, unknown, if either is.
func sumOf(a, b *int64) *int64 {
	if a == nil || b == nil {
		return nil
	}
	return ptr(*a + *b)
}

// maxOf is the larger of two values; nil, unknown, if either is.
func maxOf[T int64 | time.Duration](a, b *T) *T {
	if a == nil || b == nil {
		return nil
	}
	return ptr(max(*a, *b))
}

// topicDepths reads the depths of handlers of one topic each.
func (a *redisStreamAdapter) topicDepths(ctx context.Context, qs []depthQuery) ([]HandlerDepth, error) {
	ds := make([]HandlerDepth, len(qs))
	pipe := a.client.Pipeline()
	clock := pipe.Time(ctx)
	infos := map[string]*redis.Cmd{}
	pending := make([]*redis.XPendingCmd, len(qs))
	for i, q := range qs {
		if q.h.broadcast {
			ds[i].Scope = DepthNone
			continue
		}
		if infos[q.h.topic] == nil {
			infos[q.h.topic] = pipe.Do(ctx, "XINFO", "GROUPS", q.h.topic)
		}
		pending[i] = pipe.XPending(ctx, q.h.topic, a.cfg.GroupPrefix+q.h.name)
	}
	execPipeline(ctx, pipe)
	now, err := clock.Result()
	if err != nil {
		return nil, fmt.Errorf("redis: read consumer groups: %w", err)
	}
	groups := map[string]map[string]redisGroupInfo{} // by stream, then group
	for stream, cmd := range infos {
		reply, err := cmd.Slice()
		if err != nil && !isNoSuchKey(err) {
			return nil, fmt.Errorf("redis: xinfo groups %s: %w", stream, err)
		}
		groups[stream] = map[string]redisGroupInfo{}
		for _, g := range reply {
			info := parseRedisGroupInfo(g)
			groups[stream][info.name] = info
		}
	}

	var (
		unread = make([]*redis.XMessageSliceCmd, len(qs))
		second = a.client.Pipeline()
		oldest = make([]string, len(qs)) // the oldest pending entry's id
	)
	for i, q := range qs {
		if q.h.broadcast {
			continue
		}
		ds[i] = HandlerDepth{Scope: DepthShared, Waiting: ptr(int64(0)), Pending: ptr(int64(0)), Consumers: ptr(int64(0)), Oldest: ptr(time.Duration(0))}
		g, ok := groups[q.h.topic][a.cfg.GroupPrefix+q.h.name]
		if !ok {
			continue // the handler never ran: the group starts at the stream's end when it does
		}
		ds[i].Waiting, ds[i].Pending, ds[i].Consumers = g.lag, &g.pending, &g.consumers
		summary, err := pending[i].Result()
		if err != nil && !isNoGroup(err) {
			return nil, fmt.Errorf("redis: xpending %s %s: %w", q.h.topic, a.cfg.GroupPrefix+q.h.name, err)
		}
		if summary != nil && summary.Count > 0 {
			oldest[i] = summary.Lower
		}
		if g.lag == nil || *g.lag > 0 {
			unread[i] = second.XRangeN(ctx, q.h.topic, "("+g.lastDelivered, "+", 1)
		}
	}
	if second.Len() > 0 {
		execPipeline(ctx, second)
	}
	for i := range qs {
		if unread[i] != nil {
			entries, err := unread[i].Result()
			if err != nil {
				return nil, fmt.Errorf("redis: xrange %s: %w", qs[i].h.topic, err)
			}
			if len(entries) > 0 && (oldest[i] == "" || redisIDTime(entries[0].ID).Before(redisIDTime(oldest[i]))) {
				oldest[i] = entries[0].ID
			}
		}
		if oldest[i] != "" {
			ds[i].Oldest = ptr(max(now.Sub(redisIDTime(oldest[i])), 0))
		}
	}
	return ds, nil
}

// redisGroupInfo is one consumer group of an XINFO GROUPS reply.
type redisGroupInfo struct {
	name          string
	consumers     int64
	pending       int64
	lastDelivered string
	lag           *int64 // nil: Redis cannot tell (or is older than 7.0)
}

// parseRedisGroupInfo reads one group of a raw XINFO GROUPS reply: a map
// (RESP3) or a flat list of keys and values (RESP2). It is read raw because
// go-redis reports a lag Redis 6.2 does not send as 0.
func parseRedisGroupInfo(reply any) redisGroupInfo {
	fields := map[string]any{}
	switch r := reply.(type) {
	case map[any]any:
		for k, v := range r {
			fields[fmt.Sprint(k)] = v
		}
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			fields[fmt.Sprint(r[i])] = r[i+1]
		}
	}
	info := redisGroupInfo{name: fmt.Sprint(fields["name"]), lastDelivered: fmt.Sprint(fields["last-delivered-id"])}
	info.consumers, _ = fields["consumers"].(int64)
	info.pending, _ = fields["pending"].(int64)
	if lag, ok := fields["lag"].(int64); ok {
		info.lag = &lag
	}
	return info
}

// redisIDTime is when the entry with id was added: an id is
// <milliseconds>-<sequence>.
func redisIDTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return time.UnixMilli(n)
}

func isNoSuchKey(err error) bool {
	return !errors.Is(err, redis.Nil) && strings.Contains(err.Error(), "no such key")
}
