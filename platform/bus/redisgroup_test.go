package bus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/testenv"
)

// groupFixture is a stream and consumer group of a test's own, with a
// client to look behind the subscriber's back.
type groupFixture struct {
	t      *testing.T
	addr   string
	client *redis.Client
	stream string
	group  string
}

func newGroupFixture(t *testing.T) *groupFixture {
	addr := testenv.RequireRedis(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	id := strings.ToLower(watermill.NewShortUUID()[:8])
	f := &groupFixture{t: t, addr: addr, client: client, stream: "test.redisgroup" + id + ".published", group: "test.group-" + id}
	t.Cleanup(func() { _ = client.Del(context.Background(), f.stream).Err(); _ = client.Close() })
	return f
}

func (f *groupFixture) config() RedisConfig {
	cfg := DefaultConfig().Redis
	cfg.Addr = f.addr
	return cfg
}

// subscribe starts a subscriber with one consumer per name; client, if
// not nil, replaces the one it would open.
func (f *groupFixture) subscribe(cfg RedisConfig, client *redis.Client, consumers ...string) (*redisGroupSubscriber, <-chan *message.Message) {
	f.t.Helper()
	if client == nil {
		client = newRedisGroupClient(cfg, len(consumers), nil)
	}
	sub := newRedisGroupSubscriber(client, f.group, consumers, cfg, watermill.NopLogger{})
	f.t.Cleanup(func() { _ = sub.Close() })
	msgs, err := sub.Subscribe(context.Background(), f.stream)
	if err != nil {
		f.t.Fatal(err)
	}
	return sub, msgs
}

// add appends entries whose payloads are the given numbers, in one pipeline.
func (f *groupFixture) add(ns ...int) {
	f.t.Helper()
	pipe := f.client.Pipeline()
	for _, n := range ns {
		values, err := safeRedisMarshaller{}.Marshal(f.stream, message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(n))))
		if err != nil {
			f.t.Fatal(err)
		}
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: f.stream, Values: values})
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

// pending lists the group's pending entries.
func (f *groupFixture) pending() []redis.XPendingExt {
	f.t.Helper()
	xps, err := f.client.XPendingExt(context.Background(), &redis.XPendingExtArgs{Stream: f.stream, Group: f.group, Start: "-", End: "+", Count: 1000}).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return xps
}

func receive(t *testing.T, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg := <-msgs:
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
	}
}

// commandCounter counts the commands a client sends, pipelined or not.
type commandCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *commandCounter) count(cmd redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[cmd.Name()]++
}

func (c *commandCounter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

func TestRedisGroupReadsAndAcksInBatchesInOrder(t *testing.T) {
	const n = 300
	f := newGroupFixture(t)
	cfg := f.config()
	counter := &commandCounter{n: map[string]int{}}
	client := newRedisGroupClient(cfg, 1, nil)
	client.AddHook(counter)
	_, msgs := f.subscribe(cfg, client, "c1")
	ns := make([]int, n)
	for i := range ns {
		ns[i] = i
	}
	f.add(ns...)

	first := receive(t, msgs)
	first.Nack() // sent again, before anything else
	for i := range n {
		msg := receive(t, msgs)
		if got := string(msg.Payload); got != strconv.Itoa(i) {
			t.Fatalf("message %d has payload %s: out of order", i, got)
		}
		if i == 0 && msg.UUID != first.UUID {
			t.Fatalf("after a nack got %s, want %s again", msg.UUID, first.UUID)
		}
		msg.Ack()
	}
	until(t, "every entry XACKed", func() bool { return len(f.pending()) == 0 })
	// One read and one XACK per entry would be 300 of each.
	reads, acks := counter.get("xreadgroup"), counter.get("xack")
	t.Logf("%d entries: %d XREADGROUP, %d XACK", n, reads, acks)
	if limit := 3 * n / cfg.ReadCount; reads > limit+5 || acks > limit {
		t.Fatalf("%d XREADGROUP and %d XACK for %d entries read %d at a time", reads, acks, n, cfg.ReadCount)
	}
}

func TestRedisGroupStartsAtTheStreamsEnd(t *testing.T) {
	f := newGroupFixture(t)
	f.add(1) // before the group exists
	_, msgs := f.subscribe(f.config(), nil, "c1")
	f.add(2)
	msg := receive(t, msgs)
	if string(msg.Payload) != "2" {
		t.Fatalf("a new group got %s first, want 2: it must start at $", msg.Payload)
	}
	msg.Ack()
}

func (f *groupFixture) createGroup() {
	f.t.Helper()
	if err := f.client.XGroupCreateMkStream(context.Background(), f.stream, f.group, "$").Err(); err != nil {
		f.t.Fatal(err)
	}
}

// readAs takes every new entry into consumer's pending list, as a consumer
// that then dies (or loses the reply) would.
func (f *groupFixture) readAs(consumer string) {
	f.t.Helper()
	f.createGroup()
	f.add(1, 2, 3)
	if err := f.client.XReadGroup(context.Background(), &redis.XReadGroupArgs{Group: f.group, Consumer: consumer, Streams: []string{f.stream, ">"}, Count: 10}).Err(); err != nil {
		f.t.Fatal(err)
	}
}

func TestRedisGroupClaimsTheEntriesOfADeadConsumer(t *testing.T) {
	f := newGroupFixture(t)
	f.readAs("dead")
	cfg := f.config()
	cfg.MaxIdleTime, cfg.ClaimInterval = 300*time.Millisecond, 50*time.Millisecond
	start := time.Now()
	_, msgs := f.subscribe(cfg, nil, "alive")
	for _, want := range []int{1, 2, 3} {
		msg := receive(t, msgs)
		if string(msg.Payload) != strconv.Itoa(want) {
			t.Fatalf("claimed %s, want %d", msg.Payload, want)
		}
		msg.Ack()
	}
	if d := time.Since(start); d < cfg.MaxIdleTime-50*time.Millisecond {
		t.Fatalf("claimed after %s, before max_idle_time", d)
	}
	until(t, "the claimed entries XACKed", func() bool { return len(f.pending()) == 0 })
}

func TestRedisGroupRedeliversItsOwnPendingEntriesAtOnce(t *testing.T) {
	f := newGroupFixture(t)
	f.readAs("me") // as if the reply to my read was lost
	cfg := f.config()
	cfg.MaxIdleTime = time.Hour
	_, msgs := f.subscribe(cfg, nil, "me")
	for _, want := range []int{1, 2, 3} {
		if msg := receive(t, msgs); string(msg.Payload) != strconv.Itoa(want) {
			t.Fatalf("got %s, want %d", msg.Payload, want)
		} else {
			msg.Ack()
		}
	}
}

func TestRedisGroupCloseReleasesWhatItReadButDidNotHandOn(t *testing.T) {
	f := newGroupFixture(t)
	cfg := f.config()
	cfg.MaxIdleTime = time.Hour
	f.createGroup()
	f.add(1, 2, 3, 4, 5)
	sub, msgs := f.subscribe(cfg, nil, "c1") // reads all five at once
	receive(t, msgs)                         // with the handler while closing
	start := time.Now()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %s", d)
	}
	xps := f.pending()
	if len(xps) != 5 {
		t.Fatalf("%d pending entries, want 5", len(xps))
	}
	for i, xp := range xps {
		released := xp.Idle >= cfg.MaxIdleTime
		if released != (i > 0) {
			t.Fatalf("entry %d (%s) idle for %s: only the entries never handed on are released", i, xp.ID, xp.Idle)
		}
	}
}

func TestRedisGroupKeepsItsBatchFromOtherConsumers(t *testing.T) {
	f := newGroupFixture(t)
	cfg := f.config()
	cfg.MaxIdleTime, cfg.ClaimInterval = time.Second, 50*time.Millisecond
	f.createGroup()
	f.add(1, 2, 3, 4, 5, 6)
	_, slow := f.subscribe(cfg, nil, "slow") // reads all six at once
	first := receive(t, slow)
	var other atomic.Int32
	_, msgs := f.subscribe(cfg, nil, "other")
	go func() {
		for msg := range msgs {
			other.Add(1)
			msg.Ack()
		}
	}()
	// 6 x 300ms: the last entries wait longer than max_idle_time.
	msg := first
	for i := range 6 {
		if i > 0 {
			msg = receive(t, slow)
		}
		if got := string(msg.Payload); got != strconv.Itoa(i+1) {
			t.Fatalf("the slow consumer got %s, want %d", got, i+1)
		}
		time.Sleep(300 * time.Millisecond)
		msg.Ack()
	}
	time.Sleep(200 * time.Millisecond)
	if n := other.Load(); n != 0 {
		t.Fatalf("the other consumer claimed %d entries of a live consumer's batch", n)
	}
}

func TestRedisGroupSendsAcksOfSlowHandlersWithoutWaitingForARead(t *testing.T) {
	f := newGroupFixture(t)
	_, msgs := f.subscribe(f.config(), nil, "c1")
	f.add(1, 2)
	receive(t, msgs).Ack()
	second := receive(t, msgs) // its handler takes long
	until(t, "the first entry XACKed while the second is handled", func() bool { return len(f.pending()) == 1 })
	second.Ack()
	until(t, "both XACKed", func() bool { return len(f.pending()) == 0 })
}

func TestRedisConsumerNames(t *testing.T) {
	if got := fmt.Sprint(redisConsumerNames("i", 3)); got != "[i i-2 i-3]" {
		t.Fatalf("redisConsumerNames = %s", got)
	}
	if got := fmt.Sprint(redisConsumerNames("i", 0)); got != "[i]" {
		t.Fatalf("redisConsumerNames with concurrency unset = %s", got)
	}
}

// read_count is the handler's read-ahead, split between its consumers: a
// consumer whose handler is busy holds no more than its share, and the
// other consumers take the rest.
func TestRedisGroupSplitsReadCountBetweenConsumers(t *testing.T) {
	f := newGroupFixture(t)
	cfg := f.config()
	cfg.ReadCount = 8
	_, msgs := f.subscribe(cfg, nil, "c1", "c2", "c3", "c4")
	f.add(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
	// Nothing is acked: each consumer holds the batch it read.
	held := map[string]bool{}
	until(t, "every consumer received a message", func() bool {
		select {
		case msg := <-msgs:
			held[string(msg.Payload)] = true
		default:
		}
		return len(held) == 4
	})
	perConsumer := map[string]int{}
	for _, p := range f.pending() {
		perConsumer[p.Consumer]++
	}
	for consumer, n := range perConsumer {
		if n > 2 {
			t.Errorf("consumer %s read %d entries ahead, want at most 8/4 = 2 (pending: %v)", consumer, n, perConsumer)
		}
	}
}
