package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/example/monolith/platform/config"
)

// natsAdapter keeps every topic in one JetStream stream, on the subject
// <subject_prefix>.<topic>, and gives each handler a durable push consumer
// named after it, filtered on its topic (or pattern), which its instances
// share through a queue group. A broadcast handler gets an ephemeral
// consumer per instance. It publishes and subscribes with watermill-nats's
// JetStream publisher and subscriber; each handler's subscriber has a
// connection of its own, as watermill-nats drains it on Close.
type natsAdapter struct {
	cfg            NATSConfig
	publishTimeout time.Duration
	instance       string
	logger         watermill.LoggerAdapter
	conn           *nats.Conn // the publisher's, and the consumers' management
	js             nats.JetStreamContext
	pub            *wmnats.Publisher
}

func newNATS(ctx context.Context, cfg Config, instance string, logger watermill.LoggerAdapter) (*natsAdapter, error) {
	a := &natsAdapter{cfg: cfg.NATS, publishTimeout: cfg.PublishTimeout, instance: instance, logger: logger}
	dial := func() (err error) {
		a.conn, err = nats.Connect(a.cfg.URL, a.options("publisher")...)
		return err
	}
	if err := connectWithRetry(ctx, "nats "+config.Redact(a.cfg.URL), cfg.ConnectTimeout, logger, dial); err != nil {
		return nil, err
	}
	var err error
	if a.js, err = a.conn.JetStream(); err != nil {
		a.conn.Close()
		return nil, fmt.Errorf("nats: jetstream: %w", err)
	}
	if err := a.ensureStream(); err != nil {
		a.conn.Close()
		return nil, err
	}
	a.pub, err = wmnats.NewPublisherWithNatsConn(a.conn, wmnats.PublisherPublishConfig{
		Marshaler:         natsMarshaler{a.cfg.SubjectPrefix},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		// Publishing waits for JetStream's ack: a nil error means the
		// stream has the message. No Nats-Msg-Id: JetStream would drop a
		// replay (same event id) as a duplicate.
		JetStream: wmnats.JetStreamConfig{},
	}, logger)
	if err != nil {
		a.conn.Close()
		return nil, fmt.Errorf("nats publisher: %w", err)
	}
	return a, nil
}

// options are a connection's: named for the broker's views, reconnecting
// for ever while the process runs.
func (a *natsAdapter) options(role string) []nats.Option {
	return []nats.Option{
		nats.Name(a.instance + " " + role),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
	}
}

// ensureStream creates the stream of every topic if it does not exist.
func (a *natsAdapter) ensureStream() error {
	_, err := a.js.StreamInfo(a.cfg.Stream)
	if errors.Is(err, nats.ErrStreamNotFound) {
		_, err = a.js.AddStream(&nats.StreamConfig{
			Name:     a.cfg.Stream,
			Subjects: []string{a.cfg.SubjectPrefix + ".>"},
			Storage:  nats.FileStorage,
			Replicas: a.cfg.Replicas,
		})
	}
	if err != nil {
		return fmt.Errorf("nats: stream %s: %w", a.cfg.Stream, err)
	}
	return nil
}

func (a *natsAdapter) publisher() message.Publisher { return a.pub }

// natsName is h's durable consumer and queue group name: NATS names take
// no dots.
func natsName(handler string) string { return strings.ReplaceAll(handler, ".", "_") }

// filter is the subject filter of a consumer of topic, a topic or a
// pattern. NATS's `*` is a pattern's; `#` has no NATS equivalent in every
// position, so a pattern with one reads the whole stream and the handler
// skips what it does not match (Handler.skips).
func (a *natsAdapter) filter(topic string) string {
	if strings.Contains(topic, "#") {
		return a.cfg.SubjectPrefix + ".>"
	}
	return a.cfg.SubjectPrefix + "." + topic
}

// prefetch is how many deliveries h's consumer has unacked at most, across
// instances: bus.nats.prefetch, and at least four per subscription, since
// JetStream hands each delivery to one subscription of the queue group
// whether or not it is busy: with fewer held, some subscriptions sit idle
// while others queue (a 5 ms handler scaled to 0.73x linear at
// concurrency 32 with two per subscription, 0.83x with four); 1 for an
// ordered handler, so that one event is handled at a time.
func (a *natsAdapter) prefetch(h Handler) int {
	if h.ordered {
		return 1
	}
	return max(a.cfg.Prefetch, 4*h.concurrency)
}

func (a *natsAdapter) subscriber(h Handler) (message.Subscriber, bool, error) {
	filter := a.filter(h.topic)
	opts := []nats.SubOpt{nats.ManualAck()}
	durable, queue, n := "", "", h.concurrency
	if h.broadcast {
		// An ephemeral consumer of this instance, gone when it unsubscribes.
		opts = append(opts, nats.DeliverNew(), nats.AckExplicit(), nats.AckWait(a.cfg.AckWait), nats.MaxAckPending(a.prefetch(h)))
		n = 1
	} else {
		durable, queue = natsName(h.name), natsName(h.name)
		if err := a.ensureConsumer(h, durable, filter); err != nil {
			return nil, false, err
		}
		// Bound, not created by the subscription: unsubscribing keeps it.
		opts = append(opts, nats.Bind(a.cfg.Stream, durable))
	}
	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:              a.cfg.URL,
		NatsOptions:      a.options(h.name),
		Unmarshaler:      natsMarshaler{a.cfg.SubjectPrefix},
		SubscribersCount: n,
		AckWaitTimeout:   a.cfg.AckWait,
		SubjectCalculator: func(string, string) *wmnats.SubjectDetail {
			return &wmnats.SubjectDetail{Primary: filter, QueueGroup: queue}
		},
		JetStream: wmnats.JetStreamConfig{
			// An ack goes out without waiting for JetStream's reply, as
			// AMQP's and Redis's do: one round trip per event would bound a
			// subscription at one event per round trip. An ack lost with the
			// connection means a redelivery after ack_wait, which the
			// handlers absorb like any other.
			AckAsync:          true,
			SubscribeOptions:  opts,
			DurablePrefix:     durable,
			DurableCalculator: func(prefix, _ string) string { return prefix },
		},
	}, a.logger)
	if err != nil {
		return nil, false, fmt.Errorf("nats subscriber for %s: %w", h.name, err)
	}
	var s message.Subscriber = sub
	if h.broadcast && h.concurrency > 1 {
		s = keyedPool{sub: s, n: h.concurrency}
	}
	return s, true, nil
}

// ensureConsumer creates h's durable consumer, delivering from the events
// published after its creation, or updates the settings of the one that
// exists.
func (a *natsAdapter) ensureConsumer(h Handler, durable, filter string) error {
	cfg := &nats.ConsumerConfig{
		Durable:        durable,
		DeliverSubject: "_deliver." + a.cfg.Stream + "." + durable,
		DeliverGroup:   durable,
		DeliverPolicy:  nats.DeliverNewPolicy,
		FilterSubject:  filter,
		AckPolicy:      nats.AckExplicitPolicy,
		AckWait:        a.cfg.AckWait,
		MaxAckPending:  a.prefetch(h),
	}
	_, err := a.js.ConsumerInfo(a.cfg.Stream, durable)
	switch {
	case errors.Is(err, nats.ErrConsumerNotFound):
		_, err = a.js.AddConsumer(a.cfg.Stream, cfg)
	case err == nil:
		_, err = a.js.UpdateConsumer(a.cfg.Stream, cfg)
	}
	if err != nil {
		return fmt.Errorf("nats: consumer %s of handler %s: %w (a consumer's filter cannot change: delete it with `nats consumer rm %s %s`, or rename the handler)",
			durable, h.name, err, a.cfg.Stream, durable)
	}
	return nil
}

func (a *natsAdapter) check(context.Context) error {
	if !a.conn.IsConnected() {
		return errors.New("nats: not connected to the server")
	}
	return nil
}

func (a *natsAdapter) close() error { return a.pub.Close() }

// depths reads each handler's consumer: its pending count (waiting) and
// unacked deliveries (pending). JetStream does not tell how many
// subscriptions share a push consumer: Consumers is 1 while one is bound,
// else 0. A broadcast handler's consumer is its instance's and unnamed.
func (a *natsAdapter) depths(_ context.Context, qs []depthQuery) ([]HandlerDepth, error) {
	ds := make([]HandlerDepth, len(qs))
	for i, q := range qs {
		if q.h.broadcast {
			ds[i].Scope = DepthNone
			continue
		}
		ds[i] = HandlerDepth{Scope: DepthShared, Waiting: ptr(int64(0)), Pending: ptr(int64(0)), Consumers: ptr(int64(0))}
		info, err := a.js.ConsumerInfo(a.cfg.Stream, natsName(q.h.name))
		if errors.Is(err, nats.ErrConsumerNotFound) {
			continue // the handler never ran: it starts from new events when it does
		}
		if err != nil {
			return nil, fmt.Errorf("nats: consumer %s: %w", natsName(q.h.name), err)
		}
		ds[i].Waiting, ds[i].Pending = ptr(int64(info.NumPending)), ptr(int64(info.NumAckPending)) //nolint:gosec // G115: counts of a stream
		if info.PushBound {
			ds[i].Consumers = ptr(int64(1))
		}
	}
	return ds, nil
}

// natsMarshaler carries a message as a JetStream message on the subject
// <prefix>.<topic>: the payload as data, the metadata as headers. A header
// value cannot hold a line break, so a value with one travels quoted, its
// key listed in natsQuotedHeader. It never fails to unmarshal: a message
// without the bus's headers (written by another program) is marked for
// the handler to poison, instead of being left unacked and redelivered
// for ever by watermill-nats.
type natsMarshaler struct{ prefix string }

const natsQuotedHeader = "_bus_quoted"

func (m natsMarshaler) Marshal(topic string, msg *message.Message) (*nats.Msg, error) {
	out := nats.NewMsg(m.prefix + "." + topic)
	out.Data = msg.Payload
	out.Header.Set(wmnats.WatermillUUIDHdr, msg.UUID)
	var quoted []string
	for k, v := range msg.Metadata {
		if strings.ContainsAny(v, "\r\n") {
			v = strconv.Quote(v)
			quoted = append(quoted, k)
		}
		out.Header.Set(k, v)
	}
	if len(quoted) > 0 {
		out.Header.Set(natsQuotedHeader, strings.Join(quoted, ","))
	}
	return out, nil
}

func (m natsMarshaler) Unmarshal(in *nats.Msg) (*message.Message, error) {
	id := in.Header.Get(wmnats.WatermillUUIDHdr)
	if id == "" {
		msg := message.NewMessage(watermill.NewUUID(), in.Data)
		msg.Metadata.Set(metaUndecodable, fmt.Sprintf("a message on %s without the bus's headers", in.Subject))
		return msg, nil
	}
	msg := message.NewMessage(id, in.Data)
	for k, vs := range in.Header {
		if k != wmnats.WatermillUUIDHdr && k != natsQuotedHeader && len(vs) > 0 {
			msg.Metadata.Set(k, vs[0])
		}
	}
	for k := range strings.SplitSeq(in.Header.Get(natsQuotedHeader), ",") {
		if v, err := strconv.Unquote(msg.Metadata.Get(k)); err == nil {
			msg.Metadata.Set(k, v)
		}
	}
	return msg, nil
}
