package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Options are the collaborators of a [Bus]; zero values are usable.
type Options struct {
	// Logger receives the bus's and Watermill's logs; slog.Default() if nil.
	Logger *slog.Logger
	// Registerer receives the bus metrics; a private registry if nil.
	Registerer prometheus.Registerer
	// Instance names this process among those sharing the broker (Redis
	// consumer name, broadcast queue suffix); host-pid-random if empty.
	Instance string
	// WrapPublisher, if set, wraps the publisher every message of the bus
	// goes through: events published directly or forwarded from an outbox,
	// and messages sent to the poison topic. Tests record with it. It must
	// pass messages on with their context, where PublishBatch marks them.
	WrapPublisher func(message.Publisher) message.Publisher
	// Observers are told about every delivery every handler finished,
	// and those that are PublishObservers about every message published
	// (the console's live tail); none costs nothing.
	Observers []Observer
	// Scheduler stores the copies of events that handlers asked to retry
	// later ([RetryAfter]); without one they are retried in the consumer.
	// The application's is the outbox's (outbox.NewScheduler).
	Scheduler Scheduler
	// TracerProvider makes the spans of publishing and of handler attempts;
	// otel.GetTracerProvider() if nil. Trace context is read and written
	// with the global propagator (otel.GetTextMapPropagator).
	TracerProvider trace.TracerProvider
}

// Bus publishes events and runs handlers on one Watermill router.
type Bus struct {
	cfg       Config
	logger    *slog.Logger
	wmLogger  watermill.LoggerAdapter
	adapter   adapter
	publisher message.Publisher
	tracer    trace.Tracer
	router    *message.Router
	handlers  []Handler
	subs      []*drainingSubscriber
	stacks    []*warmStacks
	bridges   []bridge

	poison    message.HandlerMiddleware
	scheduler Scheduler
	metrics   handlerMetrics
	observers []Observer

	mu      sync.Mutex
	started bool
	closed  bool
	runErr  chan error
}

// New connects to the configured adapter, retrying an unreachable broker for
// cfg.ConnectTimeout, and prepares the router. Register handlers, then Start.
func New(ctx context.Context, cfg Config, opts Options) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bus config: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Instance == "" {
		host, _ := os.Hostname()
		opts.Instance = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), watermill.NewShortUUID()[:8])
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = otel.GetTracerProvider()
	}
	logger := opts.Logger.With("component", "bus", "adapter", cfg.Adapter)
	b := &Bus{cfg: cfg, logger: logger, wmLogger: watermillLogger(logger), observers: opts.Observers, scheduler: opts.Scheduler, tracer: opts.TracerProvider.Tracer(tracerName)}

	a, err := newAdapter(ctx, cfg, opts.Instance, b.wmLogger)
	if err != nil {
		return nil, err
	}
	b.adapter = a
	if err := b.build(opts); err != nil {
		_ = a.close()
		return nil, err
	}
	if b.bridges, err = newBridges(ctx, cfg, opts.Instance, logger, b.wmLogger); err != nil {
		_ = a.close()
		return nil, err
	}
	for _, br := range b.bridges {
		if err := b.Register(br.handler); err != nil {
			_ = b.Close()
			return nil, err
		}
	}
	return b, nil
}

// build assembles the publisher and the router's middleware chain.
func (b *Bus) build(opts Options) error {
	reg := opts.Registerer
	metered, err := newPublishMetrics(reg, retryingPublisher{batchStage{b.adapter.publisher()}, b.cfg.PublishTimeout})
	if err != nil {
		return fmt.Errorf("bus metrics: %w", err)
	}
	var pub message.Publisher = tracingPublisher{metered, b.tracer, messagingSystem(b.cfg.Adapter)}
	if observers := publishObservers(opts.Observers); len(observers) > 0 {
		pub = observingPublisher{pub, observers}
	}
	if opts.WrapPublisher != nil {
		pub = opts.WrapPublisher(pub)
	}
	b.publisher = pub

	poisoned := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "app", Subsystem: "bus", Name: "poisoned_messages_total",
		Help: "Messages sent to the poison topic, by original topic and handler.",
	}, []string{"topic", "handler"})
	if err := reg.Register(poisoned); err != nil {
		return fmt.Errorf("bus metrics: %w", err)
	}

	b.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: b.cfg.CloseTimeout}, b.wmLogger)
	if err != nil {
		return err
	}
	b.poison, err = middleware.PoisonQueueWithFilter(
		poisonPublisher{b.publisher, poisoned, b.logger}, b.cfg.PoisonTopic,
		poisonable,
	)
	if err != nil {
		return err
	}
	b.metrics, err = newHandlerMetrics(reg)
	if err != nil {
		return fmt.Errorf("bus metrics: %w", err)
	}
	return nil
}

// middleware is h's chain, outermost first; each layer sees what the inner
// ones return. It is built per handler so that per-handler values (metric
// series, timeout) are resolved once, not on every message.
func (b *Bus) middleware(h Handler) []message.HandlerMiddleware {
	timeout := b.cfg.HandlerTimeout
	if h.timeout > 0 {
		timeout = h.timeout
	}
	chain := []message.HandlerMiddleware{
		// An error that survives retry (or is permanent) is published to the
		// poison topic and the message acked, so the next ones keep flowing.
		b.poison,
		// Records on a poisoned message how many runs the event took.
		countAttempts,
	}
	if b.reschedules(h) {
		// A retry asked for later is stored to be delivered again, and
		// the message acked.
		chain = append(chain, b.reschedule(h))
	}
	return append(chain,
		// Transient errors are retried with exponential backoff; permanent
		// ones and shutdown stop the retries.
		b.retry(h),
		// A span per run, child of the publish span whose context the
		// message carries, with what follows a failure as an event.
		b.traceAttempt(h),
		// Counts the run and logs each failure with the event's ids.
		attempt(b.logger),
		// Duration and success of each run.
		b.metrics.middleware(h),
		// A panic becomes an error that metrics, retry and the poison queue
		// all see.
		middleware.Recoverer,
		middleware.Timeout(timeout),
	)
}

// retryable reports whether the retry middleware runs the handler again
// after err: not after a permanent error, nor when shutdown cut it short.
func retryable(err error) bool {
	return !IsPermanent(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, errRedeliver)
}

// poisonable reports whether the poison queue middleware takes a message
// whose handler gave up with err. A handler cut short by shutdown is
// redelivered, not poisoned (watermill #636), and a poison handler's failure
// is redelivered so that nothing on the poison topic is lost.
func poisonable(err error) bool {
	var fromPoisonHandler poisonHandlerError
	return !errors.Is(err, context.Canceled) && !errors.Is(err, errRedeliver) && !errors.As(err, &fromPoisonHandler)
}

// Register adds handlers; call it before Start. Names must be unique.
func (b *Bus) Register(hs ...Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("bus: Register after Start")
	}
	for _, h := range hs {
		if h.poison {
			h.topic = b.cfg.PoisonTopic
		}
		if err := h.validate(); err != nil {
			return fmt.Errorf("bus: %w", err)
		}
		if !h.poison && h.topic == b.cfg.PoisonTopic {
			return fmt.Errorf("bus: handler %q consumes the poison topic: use bus.NewPoisonHandler", h.name)
		}
		for _, known := range b.handlers {
			if known.name == h.name {
				return fmt.Errorf("bus: handler %q registered twice", h.name)
			}
		}
		n, err := b.cfg.ConcurrencyOf(h)
		if err != nil {
			return fmt.Errorf("bus: %w", err)
		}
		h.concurrency = n
		sub, owned, err := b.adapter.subscriber(h)
		if err != nil {
			return fmt.Errorf("bus: %w", err)
		}
		ds := newDrainingSubscriber(sub, owned, b.cfg.CloseTimeout)
		b.subs = append(b.subs, ds)
		rh := b.router.AddConsumerHandler(h.name, h.topic, ds, func(msg *message.Message) error {
			if h.skips(msg) {
				return nil
			}
			return h.handle(b.logger, msg)
		})
		rh.AddMiddleware(ds.handled)
		stacks := newWarmStacks(n)
		b.stacks = append(b.stacks, stacks)
		rh.AddMiddleware(stacks.middleware)
		if len(b.observers) > 0 {
			// Outside the chain, to see how each delivery ended.
			rh.AddMiddleware(observe(h, b.observers))
		}
		rh.AddMiddleware(b.middleware(h)...)
		b.handlers = append(b.handlers, h)
	}
	return nil
}

// checkHandlerKeys rejects a bus.handlers entry that names no registered
// handler: a misspelt name would otherwise tune nothing, silently.
func (b *Bus) checkHandlerKeys() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(b.cfg.Handlers)) {
		if !slices.ContainsFunc(b.handlers, func(h Handler) bool { return h.name == name }) {
			errs = append(errs, fmt.Errorf("bus.handlers.%s: no handler named %q is registered", name, name))
		}
	}
	return errors.Join(errs...)
}

// Handlers lists the registered handlers, in registration order.
func (b *Bus) Handlers() []Handler {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Handler(nil), b.handlers...)
}

// Start subscribes every handler and returns once they all consume. The
// router runs until Close, independently of ctx, which bounds only start-up.
func (b *Bus) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.started || b.closed {
		b.mu.Unlock()
		return errors.New("bus: already started or closed")
	}
	b.started = true
	b.runErr = make(chan error, 1)
	for _, s := range b.stacks {
		s.start()
	}
	b.mu.Unlock()

	go func() { b.runErr <- b.router.Run(context.Background()) }() //nolint:gosec // G118: the router outlives ctx, which bounds only start-up; Close stops it
	select {
	case <-b.router.Running():
		return nil
	case err := <-b.runErr:
		// The router gave up (a subscription failed): Close has only the
		// subscribers left to close.
		b.mu.Lock()
		b.started = false
		b.mu.Unlock()
		return fmt.Errorf("bus: start: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("bus: start: %w", ctx.Err())
	}
}

// Publish sends already encoded messages; contexts use the typed [Publish].
func (b *Bus) Publish(topic string, msgs ...*message.Message) error {
	if err := refuseDelayed(msgs); err != nil {
		return err
	}
	return b.publisher.Publish(topic, msgs...)
}

// Check reports whether the bus can deliver: the broker connection is usable
// and the router runs. It backs the readiness probe.
func (b *Bus) Check(ctx context.Context) error {
	b.mu.Lock()
	running := b.started && !b.closed
	b.mu.Unlock()
	if running && b.router.IsClosed() {
		return errors.New("bus: router stopped")
	}
	return b.adapter.check(ctx)
}

// Close stops taking messages, waits up to close_timeout for in-flight
// handlers (their messages are acked), then closes the adapter.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	started := b.started
	b.mu.Unlock()

	var errs []error
	if started {
		errs = append(errs, b.router.Close(), <-b.runErr)
	}
	// The router returns once its handlers stopped, and closes their
	// subscribers on goroutines of its own; each Close here returns once
	// that one finished (a Redis consumer still reading would otherwise
	// take entries after Close returned). A router that never ran closes
	// none of them.
	for _, s := range b.subs {
		errs = append(errs, s.Close())
	}
	for _, s := range b.stacks {
		s.close()
	}
	errs = append(errs, b.adapter.close(), closeBridges(b.bridges))
	return errors.Join(errs...)
}

// retryingPublisher retries a failed publish with backoff for up to timeout,
// so a short broker reconnect delays publishers instead of failing them.
type retryingPublisher struct {
	message.Publisher
	timeout time.Duration
}

func (p retryingPublisher) Publish(topic string, msgs ...*message.Message) error {
	err := p.Publisher.Publish(topic, msgs...)
	if err == nil || inBatch(msgs) {
		return err // the common case builds no backoff; a batch's caller retries
	}
	ctx := context.Background()
	if len(msgs) > 0 {
		ctx = msgs[0].Context() // a publisher that gave up stops the retries
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 50*time.Millisecond, time.Second
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, p.Publisher.Publish(topic, msgs...)
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(p.timeout))
	return err
}
