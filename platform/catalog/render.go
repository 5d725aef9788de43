package catalog

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// DefaultFormat is the format of `app catalog` without --format.
const DefaultFormat = "table"

// renderers write a catalog in each format Write knows, by name.
var renderers = map[string]func(io.Writer, Catalog) error{
	"table":    writeTable,
	"markdown": writeMarkdown,
	"json":     writeJSON,
	"mermaid":  func(w io.Writer, c Catalog) error { _, err := io.WriteString(w, Mermaid(c)); return err },
	"asyncapi": writeAsyncAPI,
}

// Formats is every format [Write] knows, by name.
func Formats() []string { return slices.Sorted(maps.Keys(renderers)) }

// Write renders c to w in format, one of [Formats].
func Write(w io.Writer, c Catalog, format string) error {
	render, ok := renderers[format]
	if !ok {
		return fmt.Errorf("unknown catalog format %q (want %s)", format, strings.Join(Formats(), ", "))
	}
	return render(w, c)
}

func writeJSON(w io.Writer, c Catalog) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// writeTable is for a terminal: topics, handlers, then routes.
func writeTable(w io.Writer, c Catalog) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tVERSION\tPUBLISHER\tPAYLOAD\tCONSUMERS")
	for _, t := range c.Topics {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", t.Name, t.Version, t.Context, t.PayloadType, orDash(handlerNames(c.ConsumersOf(t.Name))))
	}
	fmt.Fprintf(tw, "%s\t\t%s\t(the message given up on)\t%s\n", c.PoisonTopic, PlatformContext, orDash(handlerNames(c.ConsumersOf(c.PoisonTopic))))
	fmt.Fprintln(tw, "\nHANDLER\tCONTEXT\tTOPIC\tBROADCAST\tRETRY\tTIMEOUT\tCONCURRENCY")
	for _, h := range c.Handlers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", h.Name, h.Context, h.Topic, yesNo(h.Broadcast), h.Retry, h.Timeout, h.Concurrency)
	}
	fmt.Fprintln(tw, "\nCONTEXT\tMETHOD\tPATH\tLISTENER")
	for _, r := range c.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Context, orDash(r.Method), r.Path, r.Listener)
	}
	return tw.Flush()
}

// String is the policy in a few words: "5 retries, backoff 100ms ×2 up to 10s".
func (r Retry) String() string {
	if r.MaxRetries == 0 {
		return "no retry"
	}
	return fmt.Sprintf("%d retries, backoff %s ×%g up to %s", r.MaxRetries, r.InitialInterval, r.Multiplier, r.MaxInterval)
}

func handlerNames(hs []Handler) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name
	}
	return strings.Join(names, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
