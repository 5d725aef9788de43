package catalog

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Mermaid is a flowchart of the contexts and the topics between them: an
// arrow from the publisher to each context handling the topic, dotted when
// the handler is broadcast, and to "not handled" when nothing handles it.
func Mermaid(c Catalog) string {
	var nodes, edges []string
	for _, name := range c.Contexts() {
		nodes = append(nodes, fmt.Sprintf("%s[%s]", nodeID(name), name))
	}
	for _, t := range c.Topics {
		consumers := c.ConsumersOf(t.Name)
		if len(consumers) == 0 {
			edges = append(edges, fmt.Sprintf("%s -->|%s| %s", nodeID(t.Context), t.Name, unhandledID))
		}
		for _, h := range consumers {
			arrow, label := "-->", t.Name
			if h.Broadcast {
				arrow, label = "-.->", `"`+t.Name+` (broadcast)"`
			}
			edges = append(edges, fmt.Sprintf("%s %s|%s| %s", nodeID(t.Context), arrow, label, nodeID(h.Context)))
		}
	}
	if slices.ContainsFunc(edges, func(e string) bool { return strings.HasSuffix(e, " "+unhandledID) }) {
		nodes = append(nodes, unhandledID+"((not handled))")
	}
	// Two handlers of one context on one topic make one arrow.
	edges = slices.Compact(edges)
	return "flowchart LR\n  " + strings.Join(append(nodes, edges...), "\n  ") + "\n"
}

const unhandledID = "unhandled"

// nodeID keeps a context's node clear of Mermaid's keywords (end, style...).
func nodeID(context string) string { return "ctx_" + context }

// writeMarkdown writes docs/events.md: the flowchart, then per context the
// topics it publishes, its handlers and its routes, then the platform's.
func writeMarkdown(w io.Writer, c Catalog) error {
	var b strings.Builder
	b.WriteString("# Event catalog\n\n")
	b.WriteString("Generated from what the binary registers by `make docs` (`app catalog --format markdown`): do not edit.\n")
	b.WriteString("[asyncapi.yaml](asyncapi.yaml) describes the same events as an AsyncAPI 3.0.0 document, with each payload's JSON Schema.\n\n")
	b.WriteString("```mermaid\n" + Mermaid(c) + "```\n\n")
	b.WriteString("Solid arrows: each handler gets every event once, its instances sharing them. ")
	b.WriteString("Dotted arrows: a broadcast handler, which runs on every instance for every event.\n\n")
	fmt.Fprintf(&b, "A handler's failure is retried (%s), then its event goes to the poison topic `%s`. ", retryOf(c.bus.Retry), c.PoisonTopic)
	b.WriteString("Concurrency is per handler and instance; what order each adapter keeps is in [bus.md](bus.md#concurrency-and-ordering).\n")

	for _, name := range c.Contexts() {
		fmt.Fprintf(&b, "\n## %s\n", name)
		var topics [][]string
		for _, t := range c.Topics {
			if t.Context == name {
				topics = append(topics, []string{code(t.Name), code(t.PayloadType), fmt.Sprint(t.Version), codeList(c.ConsumersOf(t.Name))})
			}
		}
		table(&b, "Publishes", []string{"topic", "payload", "version", "consumed by"}, topics)
		var handlers [][]string
		for _, h := range c.Handlers {
			if h.Context == name && h.Topic != c.PoisonTopic {
				handlers = append(handlers, []string{code(h.Name), code(h.Topic), yesNo(h.Broadcast), h.Retry.String(), h.Timeout.String(), fmt.Sprint(h.Concurrency)})
			}
		}
		table(&b, "Handles", []string{"handler", "topic", "broadcast", "retry", "timeout", "concurrency"}, handlers)
		routes(&b, c, name)
	}

	b.WriteString("\n## platform\n")
	var poison [][]string
	for _, h := range c.ConsumersOf(c.PoisonTopic) {
		poison = append(poison, []string{code(h.Name), h.Retry.String(), h.Timeout.String(), fmt.Sprint(h.Concurrency)})
	}
	fmt.Fprintf(&b, "\nThe bus publishes every event a handler gives up on to the poison topic `%s`, with the original payload and metadata and why it failed.\n", c.PoisonTopic)
	table(&b, "Handles the poison topic", []string{"handler", "retry", "timeout", "concurrency"}, poison)
	routes(&b, c, PlatformContext)
	_, err := io.WriteString(w, b.String())
	return err
}

func routes(b *strings.Builder, c Catalog, context string) {
	var rows [][]string
	for _, r := range c.Routes {
		if r.Context == context {
			rows = append(rows, []string{code(strings.TrimSpace(r.Method + " " + r.Path)), r.Listener})
		}
	}
	table(b, "HTTP routes", []string{"route", "listener"}, rows)
}

// table writes a titled Markdown table, or says there is nothing.
func table(b *strings.Builder, title string, head []string, rows [][]string) {
	fmt.Fprintf(b, "\n### %s\n\n", title)
	if len(rows) == 0 {
		b.WriteString("None.\n")
		return
	}
	b.WriteString("| " + strings.Join(head, " | ") + " |\n")
	b.WriteString(strings.Repeat("|---", len(head)) + "|\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
}

func code(s string) string { return "`" + s + "`" }

func codeList(hs []Handler) string {
	if len(hs) == 0 {
		return "nothing yet"
	}
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = code(h.Name)
	}
	return strings.Join(names, ", ")
}
