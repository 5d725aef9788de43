package bus

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/example/monolith/platform/testenv"
)

type batchPayload struct {
	N int `json:"n"`
}

// batchTopics are three topics of one test run; a batch cycles through them.
func batchTopics() []Topic[batchPayload] {
	id := strings.ToLower(watermill.NewShortUUID()[:8])
	return []Topic[batchPayload]{
		NewTopic[batchPayload]("batch.a"+id+".created", 1),
		NewTopic[batchPayload]("batch.b"+id+".created", 1),
		NewTopic[batchPayload]("batch.c"+id+".created", 1),
	}
}

// mixedBatch is n messages cycling through topics, N = 0..n-1.
func mixedBatch(t *testing.T, topics []Topic[batchPayload], n int) []TopicMessage {
	t.Helper()
	out := make([]TopicMessage, n)
	for i := range out {
		topic := topics[i%len(topics)]
		msg, err := NewMessage(context.Background(), topic, "agg-"+strconv.Itoa(i%7), batchPayload{N: i})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = TopicMessage{Topic: topic.Name(), Message: msg}
	}
	return out
}

// returnOrder records the order in which messages come back from the bus's
// publisher chain, as a test's WrapPublisher would see them.
type returnOrder struct {
	mu  sync.Mutex
	ids []string
}

func (r *returnOrder) wrap(p message.Publisher) message.Publisher { return returnRecorder{p, r} }

type returnRecorder struct {
	message.Publisher
	r *returnOrder
}

func (p returnRecorder) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	for _, m := range msgs {
		p.r.ids = append(p.r.ids, m.UUID)
	}
	return nil
}

func (r *returnOrder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func uuids(msgs []TopicMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Message.UUID
	}
	return out
}

func newBatchBus(t *testing.T, cfg Config, reg prometheus.Registerer, rec *returnOrder) *Bus {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testenv.Output(t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := New(context.Background(), cfg, Options{Logger: logger, Registerer: reg, WrapPublisher: rec.wrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// publishCount is how many publishes of topic the metrics counted.
func publishCount(t *testing.T, reg *prometheus.Registry, topic string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() != "app_bus_publish_time_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}

// checkChain checks that every message went through the wrapper, in batch
// order, and through the metrics, under its own topic.
func checkChain(t *testing.T, reg *prometheus.Registry, rec *returnOrder, msgs []TopicMessage) {
	t.Helper()
	if got, want := rec.get(), uuids(msgs); !slices.Equal(got, want) {
		t.Fatalf("the wrapper saw %d messages in another order than the batch's %d", len(got), len(want))
	}
	perTopic := map[string]uint64{}
	for _, m := range msgs {
		perTopic[m.Topic]++
	}
	for _, topic := range slices.Sorted(maps.Keys(perTopic)) {
		if got := publishCount(t, reg, topic); got != perTopic[topic] {
			t.Fatalf("metrics counted %d publishes of %s, want %d", got, topic, perTopic[topic])
		}
	}
}

func TestGoChannelPublishBatchKeepsOrderAcrossTopics(t *testing.T) {
	reg, rec := prometheus.NewRegistry(), &returnOrder{}
	b := newBatchBus(t, DefaultConfig(), reg, rec)
	topics := batchTopics()
	var (
		mu  sync.Mutex
		got []string
	)
	// Each handler's queue is drained by its own goroutine, so what the
	// handlers receive says nothing of the order across topics: record what
	// reaches the adapter, in the order it arrives.
	b.adapter = arrivalOrder{b.adapter, func(m *message.Message) {
		mu.Lock()
		got = append(got, m.UUID)
		mu.Unlock()
	}}
	msgs := mixedBatch(t, topics, 150)
	if n, err := b.PublishBatch(context.Background(), msgs); n != len(msgs) || err != nil {
		t.Fatalf("PublishBatch = %d, %v; want %d, nil", n, err, len(msgs))
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, uuids(msgs)) {
		t.Fatalf("subscribers received %d messages in another order than the batch's", len(got))
	}
	checkChain(t, reg, rec, msgs)
}

// amqpTestBus is a bus on a fresh exchange with one durable queue bound to
// every topic, so the queue holds the batch in the order the broker took it.
func amqpTestBus(t *testing.T, topics []Topic[batchPayload], queueArgs amqp091.Table) (*Bus, *prometheus.Registry, *returnOrder, *amqp091.Channel, string) {
	t.Helper()
	url := testenv.RequireAMQP(t)
	cfg := DefaultConfig()
	cfg.Adapter, cfg.AMQP.URL = AdapterAMQP, url
	cfg.AMQP.Exchange = "batch.test-" + strings.ToLower(watermill.NewShortUUID()[:8])
	keys := make([]string, len(topics))
	for i, topic := range topics {
		keys[i] = topic.Name()
	}
	ch, queue := testenv.AMQPQueue(t, url, cfg.AMQP.Exchange, keys, queueArgs)
	reg, rec := prometheus.NewRegistry(), &returnOrder{}
	return newBatchBus(t, cfg, reg, rec), reg, rec, ch, queue
}

// drain reads n deliveries from queue.
func drain(t *testing.T, ch *amqp091.Channel, queue string, n int) []amqp091.Delivery {
	t.Helper()
	var out []amqp091.Delivery
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < n {
		d, ok, err := ch.Get(queue, true)
		switch {
		case err != nil:
			t.Fatal(err)
		case ok:
			out = append(out, d)
		case time.Now().After(deadline):
			t.Fatalf("%d of %d messages in queue %s", len(out), n, queue)
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
	return out
}

func TestAMQPPublishBatchKeepsOrderWithAsyncConfirms(t *testing.T) {
	topics := batchTopics()
	ordinary := NewTopic[batchPayload]("batch.ordinary"+strings.ToLower(watermill.NewShortUUID()[:8])+".created", 1)
	b, reg, rec, ch, queue := amqpTestBus(t, append(slices.Clone(topics), ordinary), nil)

	// One event through the ordinary path, to compare what consumers get.
	if err := Publish(context.Background(), b, ordinary, "agg-x", batchPayload{N: -1}); err != nil {
		t.Fatal(err)
	}
	plain := drain(t, ch, queue, 1)[0]
	rec.mu.Lock()
	rec.ids = nil
	rec.mu.Unlock()

	msgs := mixedBatch(t, topics, 300)
	if n, err := b.PublishBatch(context.Background(), msgs); n != len(msgs) || err != nil {
		t.Fatalf("PublishBatch = %d, %v; want %d, nil", n, err, len(msgs))
	}
	a := b.adapter.(*amqpAdapter)
	// One channel in confirm mode carried the whole batch: amqp091 numbers
	// publishes only in confirm mode.
	if next := a.batcher.ch.GetNextPublishSeqNo(); next != uint64(len(msgs))+1 {
		t.Fatalf("batch channel's next publish sequence number = %d, want %d", next, len(msgs)+1)
	}
	// And published messages before earlier ones were confirmed.
	if peak := a.batcher.peakUnconfirmed.Load(); peak < 2 {
		t.Fatalf("at most %d message awaited its confirm at once: confirms were awaited one by one", peak)
	}
	deliveries := drain(t, ch, queue, len(msgs))
	for i, d := range deliveries {
		m := msgs[i]
		if d.Headers[amqp.DefaultMessageUUIDHeaderKey] != m.Message.UUID {
			t.Fatalf("delivery %d is %v, want %s (batch order)", i, d.Headers[amqp.DefaultMessageUUIDHeaderKey], m.Message.UUID)
		}
		if d.RoutingKey != m.Topic || d.Exchange != plain.Exchange || string(d.Body) != string(m.Message.Payload) {
			t.Fatalf("delivery %d: exchange %s, routing key %s, body %s; want %s, %s, %s",
				i, d.Exchange, d.RoutingKey, d.Body, plain.Exchange, m.Topic, m.Message.Payload)
		}
		if d.DeliveryMode != amqp091.Persistent || d.DeliveryMode != plain.DeliveryMode {
			t.Fatalf("delivery %d has delivery mode %d, the ordinary path %d, want persistent", i, d.DeliveryMode, plain.DeliveryMode)
		}
		if got, want := slices.Sorted(maps.Keys(d.Headers)), slices.Sorted(maps.Keys(plain.Headers)); !slices.Equal(got, want) {
			t.Fatalf("delivery %d has headers %v, the ordinary path %v", i, got, want)
		}
		for k, v := range m.Message.Metadata {
			if d.Headers[k] != v {
				t.Fatalf("delivery %d: header %s = %v, want %s", i, k, d.Headers[k], v)
			}
		}
	}
	checkChain(t, reg, rec, msgs)
}

func TestAMQPPublishBatchStopsAtTheFirstNack(t *testing.T) {
	topics := batchTopics()
	// The queue refuses what exceeds 5 messages: the broker nacks it.
	b, _, _, ch, queue := amqpTestBus(t, topics, amqp091.Table{"x-max-length": int32(5), "x-overflow": "reject-publish"})

	msgs := mixedBatch(t, topics, 12)
	n, err := b.PublishBatch(context.Background(), msgs)
	if n != 5 || err == nil || !strings.Contains(err.Error(), "nacked") {
		t.Fatalf("PublishBatch = %d, %v; want 5 and a nack", n, err)
	}
	for i, d := range drain(t, ch, queue, 5) {
		if d.Headers[amqp.DefaultMessageUUIDHeaderKey] != msgs[i].Message.UUID {
			t.Fatalf("delivery %d is not the batch's message %d", i, i)
		}
	}
	// The rest goes once there is room, on a fresh channel.
	if n, err := b.PublishBatch(context.Background(), msgs[5:10]); n != 5 || err != nil {
		t.Fatalf("PublishBatch of the tail = %d, %v; want 5, nil", n, err)
	}
	for i, d := range drain(t, ch, queue, 5) {
		if d.Headers[amqp.DefaultMessageUUIDHeaderKey] != msgs[5+i].Message.UUID {
			t.Fatalf("delivery %d of the tail is not the batch's message %d", i, 5+i)
		}
	}
}

func redisTestBus(t *testing.T) (*Bus, *prometheus.Registry, *returnOrder, *redis.Client) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Adapter, cfg.Redis.Addr = AdapterRedisStream, testenv.RequireRedis(t)
	client := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr})
	t.Cleanup(func() { _ = client.Close() })
	reg, rec := prometheus.NewRegistry(), &returnOrder{}
	return newBatchBus(t, cfg, reg, rec), reg, rec, client
}

func TestRedisPublishBatchKeepsOrderAcrossTopics(t *testing.T) {
	topics := batchTopics()
	b, reg, rec, client := redisTestBus(t)
	for _, topic := range topics {
		t.Cleanup(func() { _ = client.Del(context.Background(), topic.Name()).Err() })
	}
	msgs := mixedBatch(t, topics, 300)
	if n, err := b.PublishBatch(context.Background(), msgs); n != len(msgs) || err != nil {
		t.Fatalf("PublishBatch = %d, %v; want %d, nil", n, err, len(msgs))
	}
	// Each stream holds its topic's messages in batch order, as the
	// ordinary publisher writes them; entry ids, which Redis takes from its
	// clock as it runs each XADD, never go back across streams.
	ids := map[string]string{}
	for _, topic := range topics {
		entries, err := client.XRange(context.Background(), topic.Name(), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var want []TopicMessage
		for _, m := range msgs {
			if m.Topic == topic.Name() {
				want = append(want, m)
			}
		}
		if len(entries) != len(want) {
			t.Fatalf("stream %s has %d entries, want %d", topic.Name(), len(entries), len(want))
		}
		for i, e := range entries {
			got, err := safeRedisMarshaller{}.Unmarshal(e.Values)
			if err != nil || got.UUID != want[i].Message.UUID || string(got.Payload) != string(want[i].Message.Payload) ||
				!maps.Equal(got.Metadata, want[i].Message.Metadata) {
				t.Fatalf("stream %s entry %d is %v (%v), want the batch's message %s", topic.Name(), i, got, err, want[i].Message.UUID)
			}
			ids[got.UUID] = e.ID
		}
	}
	var last int64
	for _, m := range msgs {
		ms, _, _ := strings.Cut(ids[m.Message.UUID], "-")
		at, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || at < last {
			t.Fatalf("entry %s of message %s precedes an earlier message's", ids[m.Message.UUID], m.Message.UUID)
		}
		last = at
	}
	checkChain(t, reg, rec, msgs)
}

func TestRedisPublishBatchStopsAtTheFirstFailedXADD(t *testing.T) {
	topics := batchTopics()
	b, _, _, client := redisTestBus(t)
	for _, topic := range topics {
		t.Cleanup(func() { _ = client.Del(context.Background(), topic.Name()).Err() })
	}
	// XADD to a key holding a string fails (WRONGTYPE).
	if err := client.Set(context.Background(), topics[2].Name(), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	msgs := mixedBatch(t, topics, 9) // topics a, b, c, a, b, c...: message 3 goes to c
	n, err := b.PublishBatch(context.Background(), msgs)
	if n != 2 || err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("PublishBatch = %d, %v; want 2 and the WRONGTYPE error", n, err)
	}
	entries, err := client.XRange(context.Background(), topics[0].Name(), "-", "+").Result()
	if err != nil || len(entries) == 0 || entries[0].Values[redisstream.UUIDHeaderKey] != msgs[0].Message.UUID {
		t.Fatalf("stream %s = %v, %v; want the confirmed message %s first", topics[0].Name(), entries, err, msgs[0].Message.UUID)
	}
}

func TestPublishBatchOfNothing(t *testing.T) {
	b := newBatchBus(t, DefaultConfig(), prometheus.NewRegistry(), &returnOrder{})
	if n, err := b.PublishBatch(context.Background(), nil); n != 0 || err != nil {
		t.Fatalf("PublishBatch(nil) = %d, %v", n, err)
	}
}

// arrivalOrder is an adapter whose publisher reports every message before
// passing it on.
type arrivalOrder struct {
	adapter
	arrived func(*message.Message)
}

func (a arrivalOrder) publisher() message.Publisher {
	return arrivalPublisher{a.adapter.publisher(), a.arrived}
}

type arrivalPublisher struct {
	message.Publisher
	arrived func(*message.Message)
}

func (p arrivalPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		p.arrived(m)
	}
	return p.Publisher.Publish(topic, msgs...)
}
