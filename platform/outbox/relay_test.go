package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/testenv"
)

// outboxEvent is a row of the outbox.
type outboxEvent struct {
	Offset int64
	ID     string
	Topic  string
}

// outboxEvents lists the outbox in the order the relay must forward it:
// commit order.
func outboxEvents(t *testing.T, d *db.DB) []outboxEvent {
	t.Helper()
	order := `"offset"`
	if d.Driver == db.DriverPostgres {
		order = `transaction_id, "offset"`
	}
	rows, err := d.QueryContext(context.Background(), `SELECT "offset", payload FROM watermill_outbox ORDER BY `+order)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var events []outboxEvent
	for rows.Next() {
		var (
			e       outboxEvent
			payload []byte
			env     struct {
				UUID  string `json:"uuid"`
				Topic string `json:"destination_topic"`
			}
		)
		if err := rows.Scan(&e.Offset, &payload); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(payload, &env); err != nil {
			t.Fatal(err)
		}
		e.ID, e.Topic = env.UUID, env.Topic
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

// commitOrder lists the outbox's event ids in commit order.
func commitOrder(t *testing.T, d *db.DB) []string {
	t.Helper()
	var ids []string
	for _, e := range outboxEvents(t, d) {
		ids = append(ids, e.ID)
	}
	return ids
}

// batcher is a bus.BatchPublisher that keeps what it confirmed, in order.
type batcher struct {
	mu        sync.Mutex
	calls     [][]string // the event ids of each batch
	counts    []int      // how many of each batch it confirmed
	confirmed []string
	failAfter int  // the next batch confirms this many and fails; -1: never
	failed    bool // a batch failed

	active     atomic.Int32
	overlapped atomic.Bool // two batches were in flight at once
}

func (p *batcher) PublishBatch(_ context.Context, msgs []bus.TopicMessage) (int, error) {
	if p.active.Add(1) > 1 {
		p.overlapped.Store(true)
	}
	defer p.active.Add(-1)
	time.Sleep(time.Millisecond) // a broker round trip, for another relay to overlap
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.Message.UUID
	}
	p.calls = append(p.calls, ids)
	n, err := len(ids), error(nil)
	if p.failAfter >= 0 && p.failAfter < n {
		n, err = p.failAfter, errors.New("broker nacked the rest")
		p.failAfter, p.failed = -1, true
	}
	p.counts = append(p.counts, n)
	p.confirmed = append(p.confirmed, ids[:n]...)
	return n, err
}

func (p *batcher) Publish(string, ...*message.Message) error {
	return errors.New("the relay must publish batches")
}

func (p *batcher) Close() error { return nil }

func (p *batcher) snapshot() (calls [][]string, confirmed []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls), slices.Clone(p.confirmed)
}

// checkResumes checks that every batch continued where the confirmed
// prefix ended: events in commit order, the unconfirmed tail again after a
// failure.
func (p *batcher) checkResumes(t *testing.T, want []string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	pos := 0
	for i, ids := range p.calls {
		if pos+len(ids) > len(want) || !slices.Equal(ids, want[pos:pos+len(ids)]) {
			t.Fatalf("batch %d does not continue at event %d, the first one not confirmed", i+1, pos+1)
		}
		pos += p.counts[i]
	}
}

func (p *batcher) waitConfirmed(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, confirmed := p.snapshot()
		if len(confirmed) >= n {
			return confirmed
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events confirmed", len(confirmed), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRelayAdvancesOnlyPastTheConfirmedPrefix(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		out := &batcher{failAfter: 17}
		r, err := outbox.NewRelay(d, out, outbox.Config{PollInterval: 10 * time.Millisecond, BatchSize: 50}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			seqs := make([]int, 30)
			for j := range seqs {
				seqs[j] = i*30 + j
			}
			publish(t, d, seqs...)
		}
		want := commitOrder(t, d)
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		confirmed := out.waitConfirmed(t, len(want))
		// The batch after the failure starts with its first unconfirmed
		// event: the tail, and only it, is forwarded again. (A batch may
		// hold fewer than 50 events: PostgreSQL shows the relay only what
		// committed before the oldest running transaction started.)
		out.checkResumes(t, want)
		out.mu.Lock()
		failed := out.failed
		out.mu.Unlock()
		if !failed {
			t.Fatal("no batch failed")
		}
		if !slices.Equal(confirmed, want) {
			t.Fatalf("confirmed %d events, not the %d committed ones exactly once in commit order", len(confirmed), len(want))
		}
	})
}

func TestTwoRelaysNeverForwardConcurrently(t *testing.T) {
	// Two instances of the application on one PostgreSQL database.
	cfg := dbtest.Config(t, db.DriverPostgres)
	out := &batcher{failAfter: -1}
	var dbs []*db.DB
	for range 2 {
		d, err := db.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		r, err := outbox.NewRelay(d, out, outbox.Config{PollInterval: 5 * time.Millisecond, BatchSize: 7}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		dbs = append(dbs, d)
	}
	const writers, txs = 4, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range txs {
				publish(t, dbs[w%2], w*1000+2*i, w*1000+2*i+1)
			}
		})
	}
	wg.Wait()
	confirmed := out.waitConfirmed(t, writers*txs*2)
	if out.overlapped.Load() {
		t.Fatal("two relays forwarded at the same time")
	}
	want := commitOrder(t, dbs[0])
	if !slices.Equal(confirmed, want) {
		t.Fatal("the relays forwarded the events out of commit order, or some twice")
	}
	out.checkResumes(t, want)
}

func TestRelayCloseLogsNoError(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		var errorLogs errorCounter
		out := &recorder{delay: time.Millisecond}
		r, err := outbox.NewRelay(d, out, outbox.Config{PollInterval: 10 * time.Millisecond, BatchSize: 20}, slog.New(&errorLogs))
		if err != nil {
			t.Fatal(err)
		}
		seqs := make([]int, 100)
		for i := range seqs {
			seqs[i] = i
		}
		publish(t, d, seqs...)
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitLen(t, out, 10)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if n := errorLogs.n.Load(); n > 0 {
			t.Fatalf("%d records at ERROR on Close: %s", n, errorLogs.last.Load())
		}
	})
}

// errorCounter is a slog handler counting records at ERROR and above.
type errorCounter struct {
	n    atomic.Int64
	last atomic.Value
}

func (h *errorCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h *errorCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.n.Add(1)
		h.last.Store(r.Message)
	}
	return nil
}

func (h *errorCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorCounter) WithGroup(string) slog.Handler      { return h }

// brokerTopics are three topics unique to a test; events cycle through them.
func brokerTopics() []bus.Topic[order] {
	id := strings.ToLower(watermill.NewShortUUID()[:8])
	return []bus.Topic[order]{
		bus.NewTopic[order]("relay.a"+id+".placed", 1),
		bus.NewTopic[order]("relay.b"+id+".placed", 1),
		bus.NewTopic[order]("relay.c"+id+".placed", 1),
	}
}

// publishMixed commits n events cycling through topics, 20 per transaction.
func publishMixed(t *testing.T, d *db.DB, topics []bus.Topic[order], n int) {
	t.Helper()
	for i := 0; i < n; i += 20 {
		err := d.InTx(context.Background(), func(ctx context.Context, tx *db.Tx) error {
			for j := i; j < min(i+20, n); j++ {
				if err := bus.Publish(ctx, outbox.Publisher(tx), topics[j%len(topics)], fmt.Sprint(j%5), order{Seq: j}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// relayTo creates the outbox tables and returns a function that starts a
// relay forwarding them to out.
func relayTo(t *testing.T, d *db.DB, out message.Publisher, batchSize int) (start func()) {
	t.Helper()
	r, err := outbox.NewRelay(d, out, outbox.Config{PollInterval: 10 * time.Millisecond, BatchSize: batchSize}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
	}
}

func brokerBus(t *testing.T, cfg bus.Config) *bus.Bus {
	t.Helper()
	b, err := bus.New(context.Background(), cfg, bus.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// amqpDestination is a bus on a fresh exchange and a durable queue bound to
// every topic, which holds what the broker accepted in the order it did.
func amqpDestination(t *testing.T, topics []bus.Topic[order], queueArgs amqp091.Table) (*bus.Bus, *amqp091.Channel, string) {
	t.Helper()
	cfg := bus.DefaultConfig()
	cfg.Adapter, cfg.AMQP.URL = bus.AdapterAMQP, testenv.RequireAMQP(t)
	cfg.AMQP.Exchange = "relay.test-" + strings.ToLower(watermill.NewShortUUID()[:8])
	keys := make([]string, len(topics))
	for i, topic := range topics {
		keys[i] = topic.Name()
	}
	ch, queue := testenv.AMQPQueue(t, cfg.AMQP.URL, cfg.AMQP.Exchange, keys, queueArgs)
	return brokerBus(t, cfg), ch, queue
}

// drainIDs reads n messages from queue and returns their ids. It redials
// when the broker drops the connection (other tests on the broker do).
func drainIDs(t *testing.T, ch *amqp091.Channel, queue string, n int) []string {
	t.Helper()
	var ids []string
	deadline := time.Now().Add(30 * time.Second)
	for len(ids) < n {
		d, ok, err := ch.Get(queue, true)
		switch {
		case time.Now().After(deadline):
			t.Fatalf("%d of %d messages in queue %s (%v)", len(ids), n, queue, err)
		case err != nil:
			time.Sleep(100 * time.Millisecond)
			ch = redial(t)
		case ok:
			id, _ := d.Headers[amqp.DefaultMessageUUIDHeaderKey].(string)
			ids = append(ids, id)
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
	return ids
}

func redial(t *testing.T) *amqp091.Channel {
	t.Helper()
	conn, err := amqp091.Dial(testenv.RequireAMQP(t))
	if err != nil {
		return nil // Get on a nil channel fails: the caller tries again
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, _ := conn.Channel()
	return ch
}

// firstArrivals reads queue until every id of want arrived and returns the
// ids in the order they first arrived: a connection the broker drops
// mid-batch makes the relay forward again what it had not confirmed.
func firstArrivals(t *testing.T, ch *amqp091.Channel, queue string, want []string) []string {
	t.Helper()
	seen := map[string]bool{}
	var first []string
	for len(first) < len(want) {
		for _, id := range drainIDs(t, ch, queue, 1) {
			if !seen[id] {
				seen[id] = true
				first = append(first, id)
			}
		}
	}
	return first
}

func TestRelayForwardsInCommitOrderToAMQP(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		topics := brokerTopics()
		b, ch, queue := amqpDestination(t, topics, nil)
		start := relayTo(t, d, b, 100)
		publishMixed(t, d, topics, 250)
		want := commitOrder(t, d)
		start()
		// One queue bound to the three topics sees the broker's order.
		if got := firstArrivals(t, ch, queue, want); !slices.Equal(got, want) {
			t.Fatal("the queue holds the events in another order than commit order")
		}
	})
}

func TestRelayForwardsInCommitOrderToRedis(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		topics := brokerTopics()
		cfg := bus.DefaultConfig()
		cfg.Adapter, cfg.Redis.Addr = bus.AdapterRedisStream, testenv.RequireRedis(t)
		client := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr})
		t.Cleanup(func() { _ = client.Close() })
		for _, topic := range topics {
			t.Cleanup(func() { _ = client.Del(context.Background(), topic.Name()).Err() })
		}
		start := relayTo(t, d, brokerBus(t, cfg), 100)
		publishMixed(t, d, topics, 250)
		events := outboxEvents(t, d)
		start()
		for _, topic := range topics {
			var want []string
			for _, e := range events {
				if e.Topic == topic.Name() {
					want = append(want, e.ID)
				}
			}
			var got []string
			deadline := time.Now().Add(20 * time.Second)
			for len(got) < len(want) {
				if time.Now().After(deadline) {
					t.Fatalf("stream %s has %d of %d events", topic.Name(), len(got), len(want))
				}
				time.Sleep(10 * time.Millisecond)
				entries, err := client.XRange(context.Background(), topic.Name(), "-", "+").Result()
				if err != nil {
					t.Fatal(err)
				}
				got = got[:0]
				for _, e := range entries {
					id, _ := e.Values["_watermill_message_uuid"].(string)
					got = append(got, id)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("stream %s holds its events in another order than commit order", topic.Name())
			}
		}
	})
}

func TestRelayForwardsTheNackedTailAgain(t *testing.T) {
	dbtest.Each(t, nil, func(t *testing.T, d *db.DB) {
		topics := brokerTopics()
		// The queue refuses what exceeds 10 messages: the broker nacks it.
		b, ch, queue := amqpDestination(t, topics, amqp091.Table{"x-max-length": int32(10), "x-overflow": "reject-publish"})
		start := relayTo(t, d, b, 50)
		publishMixed(t, d, topics, 60)
		events := outboxEvents(t, d)
		start()

		// The first batch: 10 confirmed, 40 nacked. The offset stops at the
		// 10th event, while the relay retries the nacked tail.
		deadline := time.Now().Add(20 * time.Second)
		for offsetAcked(t, d) != events[9].Offset {
			if time.Now().After(deadline) {
				t.Fatalf("offset %d, want %d: the 10th event", offsetAcked(t, d), events[9].Offset)
			}
			time.Sleep(10 * time.Millisecond)
		}
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, amqp091.Table{"x-max-length": int32(10), "x-overflow": "reject-publish"})
		if err != nil || q.Messages != 10 {
			t.Fatalf("queue holds %d messages (%v), want 10", q.Messages, err)
		}
		// The queue holds the confirmed prefix, in commit order; making room
		// lets the retries through, and every event arrives. (Not
		// necessarily in order: while the consumer makes room, messages of
		// a batch sent after a nacked one can fit, and the nacked one then
		// comes with the next batch. A reject-publish queue is the one way
		// RabbitMQ nacks besides internal errors; docs/reliability.md.)
		want := commitOrder(t, d)
		got := drainIDs(t, ch, queue, 10)
		if !slices.Equal(got, want[:10]) {
			t.Fatal("the queue does not hold the confirmed prefix in commit order")
		}
		seen := map[string]bool{}
		for _, id := range got {
			seen[id] = true
		}
		for _, id := range firstArrivals(t, ch, queue, want[10:]) {
			seen[id] = true
		}
		for _, id := range want {
			if !seen[id] {
				t.Fatalf("event %s never arrived", id)
			}
		}
	})
}

// offsetAcked is the relay's offset: the last event it marked forwarded.
func offsetAcked(t *testing.T, d *db.DB) int64 {
	t.Helper()
	var n sql.NullInt64
	err := d.QueryRowContext(context.Background(), `SELECT offset_acked FROM watermill_offsets_outbox WHERE consumer_group = 'relay'`).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return n.Int64
}

// On SQLite the process has one connection, which its handlers need. A
// relay that held it while the bus waited for room in a handler's queue
// (gochannel, once the queue is full) waited on handlers waiting on it: a
// burst larger than the queue stopped every handler and every request.
func TestRelayOnSQLiteNeverHoldsTheConnectionWhileThePublishWaits(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t, db.DriverSQLite, outbox.Migrations)
	if _, err := d.ExecContext(ctx, `CREATE TABLE effects (event_id TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const events = 400
	var handled atomic.Int32
	h := outbox.NewHandler(d, "shop.record-order", placed, func(ctx context.Context, e bus.Event[order]) error {
		if _, err := d.Q(ctx).ExecContext(ctx, `INSERT INTO effects (event_id) VALUES ($1)`, e.EventID); err != nil {
			return err
		}
		handled.Add(1)
		return nil
	})
	cfg := bus.DefaultConfig()
	cfg.GoChannel.QueueSize = 4 // far fewer than a batch: the relay's publish waits for the handler
	b := brokerBus(t, cfg)
	if err := b.Register(h); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	start := relayTo(t, d, b, 100)
	publishMixed(t, d, []bus.Topic[order]{placed}, events)
	start()
	deadline := time.Now().Add(30 * time.Second)
	for handled.Load() < events {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events handled after 30s: the relay and the handler wait on each other", handled.Load(), events)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
