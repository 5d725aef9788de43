// Package console serves the operators' web console at /console on the
// admin listener: a live tail of the events the handlers finish (over
// server-sent events), the flow map of contexts, topics and handlers with
// per-handler rates and errors, and the dead letters of the poison store,
// which it lists, shows, replays and purges through /api/ops/poison.
//
// The page is plain HTML, CSS and a little JavaScript embedded in the
// binary; no build step. Its files are served without admin.token (they
// hold no data); everything it fetches needs the token when one is set:
// the page asks for it when the API answers 401 and sends it as a bearer
// token. A browser's EventSource cannot send that header, so the live
// stream takes instead a ticket the page fetches with the token (POST
// /console/api/ticket), valid for a minute, in its query string.
package console

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/catalog"
	"github.com/example/monolith/platform/httpx"
)

//go:embed assets
var assets embed.FS

// Module serves the console on the admin listener and reports every
// delivery of the bus to its live tail.
var Module = fx.Module("console",
	fx.Provide(
		fx.Private,
		NewTail,
	),
	fx.Provide(
		bus.AsObserver(func(t *Tail) bus.Observer { return t }),
		httpx.AsRoutes(Routes),
	),
)

// Params are what the console shows and how it is reached.
type Params struct {
	fx.In
	Tail     *Tail
	Admin    httpx.AdminConfig
	Bus      bus.Config
	Registry *prometheus.Registry
	// Handlers are the handlers the bus registers, as the catalog lists them.
	Handlers []bus.Handler `group:"bus.handlers"`
}

// Routes are the console's page, its files and its API, all on the admin
// listener.
func Routes(p Params) []httpx.Route {
	c := &console{
		tail: p.Tail, admin: p.Admin, tickets: newTickets(p.Admin.Token),
		metrics: p.Registry,
		catalog: sync.OnceValues(func() (catalog.Catalog, error) {
			return catalog.New(bus.Topics(), p.Handlers, nil, p.Bus)
		}),
	}
	page := httpx.HandlerFunc(c.page)
	return []httpx.Route{
		{Pattern: "GET /console", Handler: page, Admin: true, Anonymous: true},
		{Pattern: "GET /console/{$}", Handler: page, Admin: true, Anonymous: true},
		{Pattern: "GET /console/assets/{file}", Handler: httpx.HandlerFunc(c.asset), Admin: true, Anonymous: true},
		{Pattern: "GET /console/api/config", Handler: httpx.HandlerFunc(c.config), Admin: true},
		{Pattern: "GET /console/api/flow", Handler: httpx.HandlerFunc(c.flow), Admin: true},
		{Pattern: "POST /console/api/ticket", Handler: httpx.HandlerFunc(c.ticket), Admin: true},
		// Checks a ticket itself: EventSource sends no Authorization header.
		{Pattern: "GET /console/api/live", Handler: httpx.HandlerFunc(c.live), Admin: true, Anonymous: true},
	}
}

type console struct {
	tail    *Tail
	admin   httpx.AdminConfig
	tickets tickets
	metrics prometheus.Gatherer
	catalog func() (catalog.Catalog, error)
}

// securityHeaders keep the page and its files to themselves: scripts and
// styles from the binary only, never framed, no referrer (the stream's
// URL carries a ticket).
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

func (c *console) page(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	securityHeaders(w)
	http.ServeFileFS(w, r, assets, "assets/index.html")
	return nil
}

// files are the page's files by name, and their path in assets; the page
// itself is served at /console only.
var files = func() map[string]string {
	entries, err := fs.ReadDir(assets, "assets")
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	m := map[string]string{}
	for _, e := range entries {
		if e.Name() != "index.html" {
			m[e.Name()] = "assets/" + e.Name()
		}
	}
	return m
}()

func (c *console) asset(w http.ResponseWriter, r *http.Request) error {
	file, ok := files[r.PathValue("file")]
	if !ok {
		return httpx.NotFound("no such console file")
	}
	if err := noQuery(r); err != nil {
		return err
	}
	securityHeaders(w)
	http.ServeFileFS(w, r, assets, file)
	return nil
}

// noQuery refuses parameters an endpoint does not take.
func noQuery(r *http.Request) error {
	for k := range r.URL.Query() {
		return httpx.BadRequest("unknown query parameter %q", k)
	}
	return nil
}

func (c *console) config(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	cat, err := c.catalog()
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"trace_url":      c.admin.TraceURL,
		"token_required": c.admin.Token != "",
		"poison_topic":   cat.PoisonTopic,
	})
	return nil
}

func (c *console) flow(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	cat, err := c.catalog()
	if err != nil {
		return err
	}
	now := time.Now()
	cur, err := countsNow(c.metrics)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, newFlow(cat, now, cur))
	return nil
}

func (c *console) ticket(w http.ResponseWriter, r *http.Request) error {
	if err := noQuery(r); err != nil {
		return err
	}
	t, exp := c.tickets.issue()
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"ticket": t, "expires_at": exp.UTC()})
	return nil
}

// liveParams are the query parameters of the live stream.
var liveParams = map[string]bool{"topic": true, "context": true, "handler": true, "correlation_id": true, "ticket": true}

// filterOf reads the live stream's filter from the query.
func filterOf(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	for k, vs := range q {
		if !liveParams[k] {
			return Filter{}, httpx.BadRequest("unknown query parameter %q; the stream takes topic, context, handler, correlation_id and ticket", k)
		}
		if len(vs) > 1 {
			return Filter{}, httpx.BadRequest("query parameter %q given %d times", k, len(vs))
		}
		if len(vs[0]) > 200 {
			return Filter{}, httpx.BadRequest("query parameter %q is longer than 200 characters", k)
		}
	}
	return Filter{Topic: q.Get("topic"), Context: q.Get("context"), Handler: q.Get("handler"), CorrelationID: q.Get("correlation_id")}, nil
}

// heartbeat keeps proxies from closing an idle stream.
const heartbeat = 15 * time.Second

// writeTimeout bounds each write to a stream, so a client that stopped
// reading does not hold it forever.
const writeTimeout = 10 * time.Second

// live streams the rows the filter selects as server-sent events
// ("handled", data: the row as JSON), and "dropped" events saying how many
// rows the stream lost because it fell behind.
func (c *console) live(w http.ResponseWriter, r *http.Request) error {
	f, err := filterOf(r)
	if err != nil {
		return err
	}
	if !c.tickets.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="admin"`)
		return httpx.Unauthorized("the live stream needs a ticket from POST /console/api/ticket (?ticket=...) or Authorization: Bearer <admin.token>")
	}
	sub, ok := c.tail.subscribe(f)
	if !ok {
		return httpx.Errorf(http.StatusServiceUnavailable, "too_many_streams", "%d live streams are open already; close one", maxSubscribers)
	}
	defer c.tail.unsubscribe(sub)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The browser reconnects after 2s if the stream breaks.
	if err := c.send(rc, w, "retry: 2000\n\n"); err != nil {
		return nil
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		var out strings.Builder
		select {
		case <-r.Context().Done():
			return nil
		case <-httpx.ShuttingDown(r.Context()):
			return nil
		case <-tick.C:
			out.WriteString(": keep-alive\n\n")
		case data := <-sub.rows:
			writeRow(&out, data)
			// Send what else is waiting in the same write.
			for more := true; more && out.Len() < 1<<20; {
				select {
				case data := <-sub.rows:
					writeRow(&out, data)
				default:
					more = false
				}
			}
		}
		if n := sub.dropped.Swap(0); n > 0 {
			fmt.Fprintf(&out, "event: dropped\ndata: {\"dropped\":%d}\n\n", n)
		}
		if err := c.send(rc, w, out.String()); err != nil {
			return nil // the client went away; nothing can be written to it
		}
	}
}

func writeRow(out *strings.Builder, data []byte) {
	out.WriteString("event: row\ndata: ")
	out.Write(data) // JSON has no raw newline
	out.WriteString("\n\n")
}

func (c *console) send(rc *http.ResponseController, w http.ResponseWriter, s string) error {
	if err := rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := w.Write([]byte(s)); err != nil {
		return err
	}
	return rc.Flush()
}
