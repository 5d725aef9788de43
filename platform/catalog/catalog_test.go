package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/httpx"
)

type invoiceCreatedV1 struct {
	InvoiceID string          `json:"invoice_id"`
	Amount    int64           `json:"amount_cents"`
	Note      string          `json:"note,omitempty"`
	Lines     []string        `json:"lines"`
	Extra     json.RawMessage `json:"extra"`
}

type dealWonV1 struct {
	DealID string `json:"deal_id"`
}

var (
	invoiceCreated = bus.NewTopic[invoiceCreatedV1]("billing.invoice.created", 2)
	dealWon        = bus.NewTopic[dealWonV1]("sales.deal.won", 1)
)

// fixture is a small application: billing handles sales' deals and
// broadcasts nothing; sales caches invoices on every instance; nothing
// handles one topic.
func fixture(t *testing.T) Catalog {
	t.Helper()
	unused := bus.NewTopic[dealWonV1]("sales.deal.lost", 1)
	noop := func(context.Context, bus.Event[dealWonV1]) error { return nil }
	handlers := []bus.Handler{
		bus.NewHandler("billing.invoice-deal", dealWon, noop, bus.Timeout(time.Second)),
		bus.NewHandler("sales.cache-invoices", invoiceCreated, func(context.Context, bus.Event[invoiceCreatedV1]) error { return nil }, bus.Broadcast()),
		bus.NewPoisonHandler("poison.keep", func(context.Context, bus.PoisonedMessage) error { return nil }),
	}
	routes := []httpx.Route{
		{Pattern: "POST /api/billing/invoices", Package: modulePath + "/contexts/billing/internal/ports"},
		{Pattern: "/api/ops/anything", Package: modulePath + "/platform/poison", Admin: true},
	}
	c, err := New([]bus.TopicInfo{invoiceCreated.Info(), dealWon.Info(), unused.Info()}, handlers, routes, bus.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew(t *testing.T) {
	c := fixture(t)
	if got := c.Contexts(); !slices.Equal(got, []string{"billing", "sales"}) {
		t.Errorf("Contexts() = %v, want billing and sales (the platform and its poison handler are no context)", got)
	}
	topic := c.Topics[0]
	if topic.Name != "billing.invoice.created" || topic.Context != "billing" || topic.Version != 2 || topic.PayloadType != "catalog.invoiceCreatedV1" {
		t.Errorf("first topic = %+v", topic)
	}
	defaults := bus.DefaultConfig()
	byName := map[string]Handler{}
	for _, h := range c.Handlers {
		byName[h.Name] = h
	}
	want := map[string]Handler{
		"billing.invoice-deal": {Name: "billing.invoice-deal", Context: "billing", Topic: "sales.deal.won",
			Retry: retryOf(defaults.Retry), Timeout: Duration(time.Second), Concurrency: 1},
		"sales.cache-invoices": {Name: "sales.cache-invoices", Context: "sales", Topic: "billing.invoice.created", Broadcast: true,
			Retry: retryOf(defaults.Retry), Timeout: Duration(defaults.HandlerTimeout), Concurrency: 1},
		"poison.keep": {Name: "poison.keep", Context: "poison", Topic: defaults.PoisonTopic,
			Retry: retryOf(defaults.Retry), Timeout: Duration(defaults.HandlerTimeout), Concurrency: 1},
	}
	if !maps.Equal(byName, want) {
		t.Errorf("handlers:\n%+v\nwant\n%+v", byName, want)
	}
	wantRoutes := []Route{
		{Context: "billing", Method: "POST", Path: "/api/billing/invoices", Listener: ListenerHTTP},
		{Context: PlatformContext, Method: "", Path: "/api/ops/anything", Listener: ListenerAdmin},
	}
	if !slices.Equal(c.Routes, wantRoutes) {
		t.Errorf("routes = %+v, want %+v", c.Routes, wantRoutes)
	}
}

func TestNewRefusesWhatItCannotDescribe(t *testing.T) {
	twice := bus.NewTopic[string]("sales.deal.won", 1) // as dealWon, with another payload
	if _, err := New([]bus.TopicInfo{dealWon.Info(), twice.Info()}, nil, nil, bus.DefaultConfig()); err == nil || !strings.Contains(err.Error(), "declared more than once") {
		t.Errorf("a topic declared twice unalike: %v", err)
	}
	h := bus.NewHandler("billing.invoice-deal", dealWon, func(context.Context, bus.Event[dealWonV1]) error { return nil })
	if _, err := New(nil, []bus.Handler{h}, nil, bus.DefaultConfig()); err == nil || !strings.Contains(err.Error(), "which no bus.NewTopic declares") {
		t.Errorf("a handler of an undeclared topic: %v", err)
	}
}

func TestSchemas(t *testing.T) {
	topic := fixture(t).Topics[0]
	props, _ := topic.Payload["properties"].(map[string]any)
	if got := slices.Sorted(maps.Keys(props)); !slices.Equal(got, []string{"amount_cents", "extra", "invoice_id", "lines", "note"}) {
		t.Errorf("payload properties = %v", got)
	}
	if required := topic.Payload["required"].([]any); slices.Contains(required, any("note")) || !slices.Contains(required, any("invoice_id")) {
		t.Errorf("payload required = %v: omitempty fields are optional, the others required", required)
	}
	if _, closed := topic.Payload["additionalProperties"]; closed {
		t.Error("the payload schema refuses unknown properties, which consumers ignore")
	}

	headers := topic.Headers["properties"].(map[string]any)
	for key := range (bus.Envelope{}).Metadata() {
		h, ok := headers[key].(map[string]any)
		if !ok || h["description"] == "" || h["description"] == nil {
			t.Errorf("metadata key %s is not described in the headers schema", key)
		}
	}
	for key, want := range map[string]string{bus.MetaEventType: "billing.invoice.created", bus.MetaSchemaVersion: "2", bus.MetaSource: "billing", bus.MetaAggregateType: "invoice"} {
		if got := headers[key].(map[string]any)["const"]; got != want {
			t.Errorf("header %s const = %v, want %q", key, got, want)
		}
	}
	if _, ok := headers[bus.MetaEventID].(map[string]any)["const"]; ok {
		t.Error("event_id varies per event but has a const")
	}
}

func TestMermaid(t *testing.T) {
	got := Mermaid(fixture(t))
	for _, want := range []string{
		"ctx_billing[billing]",
		"ctx_sales -->|sales.deal.won| ctx_billing",
		`ctx_billing -.->|"billing.invoice.created (broadcast)"| ctx_sales`,
		"ctx_sales -->|sales.deal.lost| unhandled",
		"unhandled((not handled))",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("flowchart lacks %q:\n%s", want, got)
		}
	}
}

func TestWrite(t *testing.T) {
	c := fixture(t)
	for _, format := range Formats() {
		var b bytes.Buffer
		if err := Write(&b, c, format); err != nil || !strings.Contains(b.String(), "sales.deal.won") {
			t.Errorf("Write %s = %v, and the output does not name a topic:\n%s", format, err, b.String())
		}
	}
	if err := Write(&bytes.Buffer{}, c, "html"); err == nil || !strings.Contains(err.Error(), "asyncapi, json, markdown, mermaid, table") {
		t.Errorf("Write html = %v, want the formats listed", err)
	}
}

// TestAsyncAPIReadsBack checks that what BreakingChanges compares, read
// from a written document, is what the catalog holds.
func TestAsyncAPIReadsBack(t *testing.T) {
	c := fixture(t)
	doc, err := AsyncAPI(c)
	if err != nil {
		t.Fatal(err)
	}
	published, err := ReadAsyncAPI(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(published) != len(c.Topics) {
		t.Fatalf("read %d topics back, want %d (the poison topic has no schema version)", len(published), len(c.Topics))
	}
	for _, topic := range c.Topics {
		p := published[topic.Name]
		if p.Version != topic.Version || len(Breaking(p.Payload, topic.Payload)) > 0 || len(Breaking(topic.Payload, p.Payload)) > 0 {
			t.Errorf("%s read back as version %d, payload %v; want %d, %v", topic.Name, p.Version, p.Payload, topic.Version, topic.Payload)
		}
	}
	if len(c.BreakingChanges(published)) > 0 {
		t.Errorf("the catalog breaks its own document: %v", c.BreakingChanges(published))
	}
}

// TestPatternHandlers: a pattern handler is listed under its pattern and
// consumes every declared topic the pattern matches, the poison topic aside;
// the AsyncAPI document gets one receive operation per matched topic.
func TestPatternHandlers(t *testing.T) {
	lost := bus.NewTopic[dealWonV1]("sales.deal.lost", 1)
	audit := bus.NewPatternHandler("audit.record", "sales.#", func(context.Context, bus.RawEvent) error { return nil })
	everything := bus.NewPatternHandler("audit.everything", "#", func(context.Context, bus.RawEvent) error { return nil })
	c, err := New([]bus.TopicInfo{invoiceCreated.Info(), dealWon.Info(), lost.Info()}, []bus.Handler{audit, everything}, nil, bus.DefaultConfig())
	if err != nil {
		t.Fatalf("a pattern handler matching declared topics: %v", err)
	}
	for topic, want := range map[string][]string{
		"sales.deal.won":          {"audit.everything", "audit.record"},
		"sales.deal.lost":         {"audit.everything", "audit.record"},
		"billing.invoice.created": {"audit.everything"},
		c.PoisonTopic:             nil,
	} {
		if got := handlerNamesOf(c.ConsumersOf(topic)); !slices.Equal(got, want) {
			t.Errorf("ConsumersOf(%s) = %v, want %v", topic, got, want)
		}
	}
	if h := c.Handlers[1]; h.Name != "audit.record" || h.Topic != "sales.#" || !h.Pattern {
		t.Errorf("handler = %+v, want audit.record on pattern sales.#", h)
	}
	doc, err := AsyncAPI(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"audit.record.sales.deal.won:", "audit.record.sales.deal.lost:", "audit.everything.billing.invoice.created:"} {
		if !bytes.Contains(doc, []byte("\n  "+op)) {
			t.Errorf("AsyncAPI document has no operation %s", op)
		}
	}
	if bytes.Contains(doc, []byte("channels/sales.#")) {
		t.Error("AsyncAPI document points at a channel named after a pattern")
	}
}

func handlerNamesOf(hs []Handler) []string {
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
	}
	return names
}
