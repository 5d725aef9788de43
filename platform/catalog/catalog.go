// Package catalog describes what the application exchanges, as the binary
// registers it: every topic declared with bus.NewTopic, every handler on
// the bus, the poison topic and the HTTP routes, each with the context
// it belongs to. It renders the description as a table, Markdown, JSON, a
// Mermaid flowchart or an AsyncAPI 3.0.0 document, and tells when a
// topic's payload changed incompatibly since a published document.
//
// platform/app builds a Catalog from the contexts the binary runs
// (`app catalog`); nothing here is kept by hand.
package catalog

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/httpx"
)

// PlatformContext is the context of what the platform serves itself, such
// as the poison store's routes.
const PlatformContext = "platform"

// Catalog is what the application publishes, handles and serves.
type Catalog struct {
	// Topics is every declared topic, by name.
	Topics []Topic `json:"topics"`
	// Handlers is every handler registered on the bus, by name.
	Handlers []Handler `json:"handlers"`
	// PoisonTopic receives what handlers give up on (bus.poison_topic).
	PoisonTopic string `json:"poison_topic"`
	// Routes is every HTTP route, by context, path and method.
	Routes []Route `json:"routes"`

	bus bus.Config // servers and AMQP topology for the AsyncAPI document
}

// Topic is a declared topic.
type Topic struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// Context owns the topic and is its only publisher.
	Context   string `json:"context"`
	Aggregate string `json:"aggregate"`
	// PayloadType is the Go type of the payload, e.g. topics.UserRegisteredV1.
	PayloadType string `json:"payload_type"`
	// Payload is the JSON Schema of the payload, generated from its type.
	Payload map[string]any `json:"payload"`
	// Headers is the JSON Schema of the envelope the event carries as
	// message metadata.
	Headers map[string]any `json:"headers"`
}

// Handler is a handler registered on the bus.
type Handler struct {
	Name string `json:"name"`
	// Context is the first segment of the name.
	Context string `json:"context"`
	// Topic is the topic the handler consumes, or its pattern.
	Topic string `json:"topic"`
	// Pattern is true when Topic is a pattern (bus.NewPatternHandler).
	Pattern bool `json:"pattern,omitempty"`
	// Broadcast handlers run on every instance for every event.
	Broadcast bool  `json:"broadcast"`
	Retry     Retry `json:"retry"`
	// Timeout bounds each attempt: the handler's own or bus.handler_timeout.
	Timeout Duration `json:"timeout"`
	// Concurrency is how many of its events run at once per instance.
	Concurrency int `json:"concurrency"`
}

// Retry is the backoff a failing handler gets (bus.retry).
type Retry struct {
	MaxRetries      int      `json:"max_retries"`
	InitialInterval Duration `json:"initial_interval"`
	Multiplier      float64  `json:"multiplier"`
	MaxInterval     Duration `json:"max_interval"`
}

// Route is an HTTP endpoint.
type Route struct {
	// Context serves the route: contexts/<name>/... gives <name>, anything
	// else [PlatformContext].
	Context string `json:"context"`
	// Method is empty when the route takes every method.
	Method string `json:"method"`
	Path   string `json:"path"`
	// Listener serves the route: [ListenerHTTP] (http.addr) or
	// [ListenerAdmin] (admin.addr).
	Listener string `json:"listener"`
}

// Listeners a route is served on.
const (
	ListenerHTTP  = "http"
	ListenerAdmin = "admin"
)

// Duration is a time.Duration that prints as "1.5s", in JSON too.
type Duration time.Duration

// String is the duration as time.Duration prints it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText prints the duration as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// New builds the catalog of topics, the handlers the app registers and its
// routes, under the bus configuration cfg. It fails when a topic is
// declared twice unalike or a handler consumes an undeclared topic.
func New(topics []bus.TopicInfo, handlers []bus.Handler, routes []httpx.Route, cfg bus.Config) (Catalog, error) {
	c := Catalog{PoisonTopic: cfg.PoisonTopic, bus: cfg}
	declared := map[string]bool{}
	for _, t := range topics {
		if declared[t.Name] {
			return Catalog{}, fmt.Errorf("catalog: topic %s is declared more than once, with different versions or payloads", t.Name)
		}
		declared[t.Name] = true
		payload, err := payloadSchema(t.Payload)
		if err != nil {
			return Catalog{}, fmt.Errorf("catalog: topic %s: %w", t.Name, err)
		}
		c.Topics = append(c.Topics, Topic{
			Name: t.Name, Version: t.Version, Context: t.Context(), Aggregate: t.Aggregate(),
			PayloadType: t.Payload.String(), Payload: payload, Headers: headersSchema(t),
		})
	}
	for _, h := range handlers {
		topic := h.Topic()
		if h.ConsumesPoison() {
			topic = cfg.PoisonTopic
		} else if !declared[topic] && !h.IsPattern() {
			return Catalog{}, fmt.Errorf("catalog: handler %s consumes %s, which no bus.NewTopic declares", h.Name(), topic)
		}
		concurrency, err := cfg.ConcurrencyOf(h)
		if err != nil {
			return Catalog{}, fmt.Errorf("catalog: %w", err)
		}
		c.Handlers = append(c.Handlers, Handler{
			Name: h.Name(), Context: strings.SplitN(h.Name(), ".", 2)[0], Topic: topic, Pattern: h.IsPattern(),
			Broadcast: h.IsBroadcast(), Retry: retryOf(cfg.Retry), Timeout: Duration(cmp.Or(h.Timeout(), cfg.HandlerTimeout)),
			Concurrency: concurrency,
		})
	}
	for _, r := range routes {
		method, path, ok := strings.Cut(r.Pattern, " ")
		if !ok {
			method, path = "", r.Pattern
		}
		listener := ListenerHTTP
		if r.Admin {
			listener = ListenerAdmin
		}
		c.Routes = append(c.Routes, Route{Context: routeContext(r.Package), Method: method, Path: path, Listener: listener})
	}
	slices.SortFunc(c.Topics, func(a, b Topic) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(c.Handlers, func(a, b Handler) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(c.Routes, func(a, b Route) int {
		return cmp.Or(cmp.Compare(a.Context, b.Context), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Method, b.Method))
	})
	return c, nil
}

// retryOf is the policy every handler gets from bus.retry.
func retryOf(cfg bus.RetryConfig) Retry {
	return Retry{
		MaxRetries: cfg.MaxRetries, InitialInterval: Duration(cfg.InitialInterval),
		Multiplier: cfg.Multiplier, MaxInterval: Duration(cfg.MaxInterval),
	}
}

// modulePath is this module's import path, found from this package's own.
var modulePath = strings.TrimSuffix(reflect.TypeFor[Catalog]().PkgPath(), "/platform/catalog")

// routeContext is <name> for a package under contexts/<name>/.
func routeContext(pkg string) string {
	rel, ok := strings.CutPrefix(pkg, modulePath+"/contexts/")
	if !ok {
		return PlatformContext
	}
	name, _, _ := strings.Cut(rel, "/")
	return name
}

// Contexts is every bounded context that publishes, handles or serves
// something, by name. The platform's own routes and poison handlers are
// not a context's.
func (c Catalog) Contexts() []string {
	var names []string
	for _, t := range c.Topics {
		names = append(names, t.Context)
	}
	for _, h := range c.Handlers {
		if h.Topic != c.PoisonTopic {
			names = append(names, h.Context)
		}
	}
	for _, r := range c.Routes {
		if r.Context != PlatformContext {
			names = append(names, r.Context)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// ConsumersOf is every handler of topic, by name: its own and the pattern
// handlers whose pattern matches it.
func (c Catalog) ConsumersOf(topic string) []Handler {
	var hs []Handler
	for _, h := range c.Handlers {
		if h.Topic == topic || h.Pattern && topic != c.PoisonTopic && bus.Match(h.Topic, topic) {
			hs = append(hs, h)
		}
	}
	return hs
}
