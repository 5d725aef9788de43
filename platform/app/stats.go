package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/poison"
	"github.com/example/monolith/platform/stats"
)

const statsUsage = `usage: app stats [--json] [--admin URL]
  --admin URL  ask the instance whose admin listener is URL (e.g. http://127.0.0.1:9090) for
               its report, rates included (token: admin.token, APP_ADMIN_TOKEN)
  --json       print the report as JSON, as GET /api/ops/stats returns it`

// statsTimeout bounds `app stats`: connecting, reading, asking an instance.
const statsTimeout = 15 * time.Second

// Stats runs `app stats [--json] [--admin URL]`. With --admin it prints
// the report of a running instance (GET /api/ops/stats). Without, it reads
// what needs no running instance: every handler's depth from the broker,
// the outbox backlog and the poison counts from the database; rates need
// an instance's counters.
func Stats(ctx context.Context, cfg Config, logger *slog.Logger, args []string, out io.Writer, contexts ...fx.Option) error {
	flags := flag.NewFlagSet("stats", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	asJSON := flags.Bool("json", false, "")
	admin := flags.String("admin", "", "")
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("%w\n%s", err, statsUsage)
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n%s", flags.Arg(0), statsUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()

	var (
		report stats.Report
		err    error
	)
	if *admin != "" {
		report, err = askInstance(ctx, *admin, cfg.Admin.Token)
	} else {
		report, err = readStats(ctx, cfg, logger, contexts...)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	return stats.WriteTable(out, report)
}

// readStats reads the depths, backlog and poison counts of the handlers
// the contexts contribute, without running them. A broker that cannot be
// reached leaves the depths out, with the reason.
func readStats(ctx context.Context, cfg Config, logger *slog.Logger, contexts ...fx.Option) (stats.Report, error) {
	var (
		handlers []bus.Handler
		d        *db.DB
		store    *poison.Store
	)
	app := fx.New(
		platform(cfg, logger),
		fx.Options(contexts...),
		// The handlers are listed, not run: they need no bus to publish to.
		fx.Replace(fx.Annotate(noBus{}, fx.As(new(bus.Publisher)))),
		fx.Populate(&d, &store),
		fx.Invoke(fx.Annotate(func(hs []bus.Handler) { handlers = hs }, fx.ParamTags(`group:"bus.handlers"`))),
	)
	if err := app.Err(); err != nil {
		return stats.Report{}, err
	}
	if err := app.Start(ctx); err != nil {
		return stats.Report{}, err
	}
	defer func() { _ = app.Stop(context.WithoutCancel(ctx)) }()

	busCfg := cfg.Bus
	// An operator waits for an answer, not for bus.connect_timeout.
	busCfg.ConnectTimeout = min(busCfg.ConnectTimeout, 5*time.Second)
	// The bus's own logs (connecting, closing) would drown the report.
	b, busErr := bus.New(ctx, busCfg, bus.Options{Logger: slog.New(minLevel{logger.Handler(), slog.LevelWarn})})
	if busErr == nil {
		defer func() { _ = b.Close() }()
	}
	r := stats.Reader{Bus: b, BusErr: busErr, Handlers: func() []bus.Handler { return handlers }, Config: cfg.Bus, DB: d, Poison: store}
	return r.Build(r.Read(ctx), nil), nil
}

// askInstance fetches GET /api/ops/stats from the admin listener at base.
func askInstance(ctx context.Context, base, token string) (stats.Report, error) {
	url := strings.TrimSuffix(base, "/") + "/api/ops/stats"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return stats.Report{}, fmt.Errorf("stats --admin: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return stats.Report{}, fmt.Errorf("stats: ask %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return stats.Report{}, fmt.Errorf("stats: read the answer of %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = " (set APP_ADMIN_TOKEN to the instance's admin token)"
		}
		return stats.Report{}, fmt.Errorf("stats: %s answered %s%s: %s", url, resp.Status, hint, strings.TrimSpace(string(body)))
	}
	var r stats.Report
	if err := json.Unmarshal(body, &r); err != nil {
		return stats.Report{}, fmt.Errorf("stats: %s answered something else than a report: %w", url, err)
	}
	return r, nil
}

// minLevel drops records below level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}
