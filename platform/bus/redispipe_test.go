package bus

import (
	"context"
	"net"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
)

// refusedRedis is a client of an address where nothing listens: every dial
// is refused.
func refusedRedis(t *testing.T) *redis.Client {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// A relay that read "stored" from a refused pipeline would advance the
// outbox past events no stream holds.
func TestRedisBatchCountsNothingStoredWhenTheDialIsRefused(t *testing.T) {
	msgs := []TopicMessage{
		{Topic: "a", Message: message.NewMessage(watermill.NewUUID(), []byte(`{}`))},
		{Topic: "b", Message: message.NewMessage(watermill.NewUUID(), []byte(`{}`))},
	}
	waits, err := redisBatch{client: refusedRedis(t)}.send(context.Background(), msgs)
	if err == nil {
		t.Fatal("send to a refused address returned no error")
	}
	if len(waits) != len(msgs) {
		t.Fatalf("%d verdicts for %d messages", len(waits), len(msgs))
	}
	for i, wait := range waits {
		if wait() == nil {
			t.Errorf("message %d confirmed though nothing was sent", i)
		}
	}
}

// A consumer whose round trip was refused keeps the XACKs it owes and its
// claim cursor; dropping them left entries pending and made the next
// XAUTOCLAIM start from an empty id.
func TestRedisGroupKeepsItsAcksAndClaimCursorWhenTheDialIsRefused(t *testing.T) {
	s := newRedisGroupSubscriber(refusedRedis(t), "g", []string{"c"}, DefaultConfig().Redis, watermill.NopLogger{})
	for _, claiming := range []bool{false, true} {
		c := &groupConsumer{s: s, name: "c", stream: "s", acks: []string{"1-0", "2-0"}, claimFrom: "5-0"}
		if !claiming {
			c.nextClaim = c.nextClaim.AddDate(1000, 0, 0)
		}
		if err := c.fetch(context.Background()); err == nil {
			t.Fatalf("claiming=%v: fetch from a refused address returned no error", claiming)
		}
		if len(c.acks) != 2 || c.claimFrom != "5-0" {
			t.Errorf("claiming=%v: after a refused fetch acks = %v, claim cursor = %q; want the 2 acks and 5-0", claiming, c.acks, c.claimFrom)
		}
	}
}
