// Package app composes the platform and the bounded contexts into the
// application, and runs its commands.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/config"
	"github.com/example/monolith/platform/console"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/poison"
	"github.com/example/monolith/platform/stats"
	"github.com/example/monolith/platform/telemetry"
)

// platform provides what contexts build on: configuration sections, logger,
// metrics registry, tracing, database, bus, outbox and poison store; the ops
// stats and the operators' console.
func platform(cfg Config, logger *slog.Logger) fx.Option {
	return fx.Options(
		fx.Supply(cfg.HTTP, cfg.Admin, cfg.Database, cfg.Bus, cfg.Outbox, cfg.Telemetry, cfg.Contexts, logger),
		// A module, so its invoke runs before anything makes a span, and
		// its stop hook, which flushes them, after everything stopped.
		telemetry.Module,
		// First of the invokes, so a bad context section stops every
		// command before the database or the broker is touched.
		config.CheckSections,
		fx.Provide(
			newRegistry,
			func(r *prometheus.Registry) prometheus.Registerer { return r },
			newDB,
		),
		bus.Module,
		outbox.Module,
		poison.Module,
		console.Module,
		stats.Module,
		fx.NopLogger,
	)
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func newDB(lc fx.Lifecycle, cfg db.Config) (*db.DB, error) {
	d, err := db.Open(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(d.Close))
	return d, nil
}

// migrate applies every context's migrations; every command runs it.
var migrate = fx.Invoke(fx.Annotate(
	func(d *db.DB, sets []db.Migrations) error { return d.Migrate(context.Background(), sets...) },
	fx.ParamTags(``, `group:"db.migrations"`),
))

// Serve runs the application until ctx is done: migrations, the bus with
// every context's handlers, and the HTTP server. On stop, HTTP drains first,
// then the bus closes.
func Serve(ctx context.Context, cfg Config, logger *slog.Logger, contexts ...fx.Option) error {
	app := fx.New(serve(cfg, logger, contexts...))
	if err := app.Err(); err != nil {
		return err
	}
	if err := app.Start(context.Background()); err != nil {
		return err
	}
	logger.Info("Started", "http", cfg.HTTP.Addr, "admin", cfg.Admin.Addr, "bus", cfg.Bus.Adapter, "database", cfg.Database.Driver)
	var failed error
	select {
	case <-ctx.Done():
	case sig := <-app.Wait():
		if sig.ExitCode != 0 {
			failed = fmt.Errorf("stopped after a fatal error (exit code %d)", sig.ExitCode)
		}
	}
	logger.Info("Stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancel()
	return errors.Join(failed, app.Stop(stopCtx))
}

// Options are the serving application without its HTTP listeners: the
// platform, the contexts, migrations, every handler on the bus, the outbox
// relay, and the HTTP handlers of every route, provided as [Handlers].
// Serve listens with them; tests serve them themselves.
func Options(cfg Config, logger *slog.Logger, contexts ...fx.Option) fx.Option {
	return fx.Options(
		platform(cfg, logger),
		fx.Options(contexts...),
		migrate,
		bus.RegisterHandlers,
		outbox.Run,
		fx.Provide(newHandlers),
		fx.StartTimeout(cfg.Bus.ConnectTimeout+time.Minute),
		fx.StopTimeout(cfg.HTTP.ShutdownTimeout+cfg.Bus.CloseTimeout+5*time.Second),
	)
}

func serve(cfg Config, logger *slog.Logger, contexts ...fx.Option) fx.Option {
	return fx.Options(Options(cfg, logger, contexts...), fx.Invoke(serveHTTP))
}

// Validate checks that the serving app's dependency graph is complete,
// without running a constructor (so without database or broker).
func Validate(cfg Config, logger *slog.Logger, contexts ...fx.Option) error {
	return fx.ValidateApp(serve(cfg, logger, contexts...))
}

// Migrate applies the migrations and returns; it needs no broker.
func Migrate(cfg Config, logger *slog.Logger, contexts ...fx.Option) error {
	app := fx.New(platform(cfg, logger), fx.Options(contexts...), migrate)
	if err := app.Err(); err != nil {
		return err
	}
	logger.Info("Migrations applied", "database", cfg.Database.Driver)
	// Start runs no hook but the database's; Stop closes it.
	if err := app.Start(context.Background()); err != nil {
		return err
	}
	return app.Stop(context.Background())
}

// withDatabase starts the platform and the contexts with the migrations
// applied and no broker, fills targets as fx.Populate does, runs run and
// stops: what the commands working on the database alone share.
func withDatabase(ctx context.Context, cfg Config, logger *slog.Logger, contexts []fx.Option, run func() error, targets ...any) error {
	app := fx.New(platform(cfg, logger), fx.Options(contexts...), migrate, fx.Populate(targets...))
	if err := app.Err(); err != nil {
		return err
	}
	if err := app.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = app.Stop(context.WithoutCancel(ctx)) }()
	return run()
}

// Handlers are the application's HTTP handlers, one per listener.
type Handlers struct {
	// Public serves http.addr: the contexts' routes, /healthz and /readyz.
	Public http.Handler
	// Admin serves admin.addr: the routes marked Admin (the ops API) and
	// /metrics, behind admin.token when it is set.
	Admin http.Handler
}

type handlerParams struct {
	fx.In
	Routes   []httpx.Route `group:"http.routes"`
	Admin    httpx.AdminConfig
	DB       *db.DB
	Bus      *bus.Bus
	Registry *prometheus.Registry
	Stats    *stats.Service
	Logger   *slog.Logger
}

func newHandlers(p handlerParams) (Handlers, error) {
	checks := []httpx.Check{{Name: "database", Check: p.DB.PingContext}, {Name: "bus", Check: p.Bus.Check}}
	public, err := httpx.NewHandler(p.Routes, checks, p.Logger)
	if err != nil {
		return Handlers{}, err
	}
	// Every request but the probes is the root span of its trace, or a
	// child of the caller's when it sends a traceparent header.
	public = otelhttp.NewHandler(public, "http.server", otelhttp.WithFilter(func(r *http.Request) bool {
		return r.URL.Path != "/healthz" && r.URL.Path != "/readyz"
	}))
	// The stats' metrics read the broker and the database on scrape, from
	// a registry of their own (see stats.Service.Metrics).
	metrics := prometheus.Gatherers{p.Registry, p.Stats.Metrics()}
	admin, err := httpx.NewAdminHandler(p.Routes, metrics, p.Admin.Token, p.Logger)
	if err != nil {
		return Handlers{}, err
	}
	return Handlers{Public: public, Admin: admin}, nil
}

type httpParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    httpx.Config
	Admin     httpx.AdminConfig
	Handlers  Handlers
	Logger    *slog.Logger
	Shutdown  fx.Shutdowner
}

// serveHTTP runs the public and the admin listener; both drain on stop
// within http.shutdown_timeout.
func serveHTTP(p httpParams) {
	listen(p, "http", p.Config.Addr, p.Handlers.Public, nil)
	listen(p, "admin", p.Admin.Addr, p.Handlers.Admin, func(ln net.Listener) error {
		// admin.Validate refused such an address by name; a host name that
		// resolved beyond loopback is caught here.
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && p.Admin.Token == "" && !tcp.IP.IsLoopback() {
			return fmt.Errorf("admin.addr %q listens on %s, not a loopback address, and admin.token is empty: set admin.token (APP_ADMIN_TOKEN) or listen on 127.0.0.1", p.Admin.Addr, tcp.IP)
		}
		return nil
	})
}

func listen(p httpParams, name, addr string, h http.Handler, check func(net.Listener) error) {
	// Closed when shutdown starts: streams (the console's events) end then,
	// since Shutdown waits for every response.
	stopping := make(chan struct{})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return httpx.WithShutdown(context.Background(), stopping) }}
	srv.RegisterOnShutdown(func() { close(stopping) })
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if check != nil {
				if err := check(ln); err != nil {
					_ = ln.Close()
					return err
				}
			}
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					p.Logger.Error("HTTP server failed", "listener", name, "error", err)
					_ = p.Shutdown.Shutdown(fx.ExitCode(1))
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, p.Config.ShutdownTimeout)
			defer cancel()
			return srv.Shutdown(ctx)
		},
	})
}

// NewLogger builds the process logger; records logged with a handler's or a
// request's context carry the event and correlation ids.
func NewLogger(cfg LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated with the config
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(bus.NewLogHandler(h))
}
