package stats

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints r for a terminal: where the rates come from, a table of
// topics, one of handlers, the outbox backlog and the poison store's total,
// then what could not be read. "-" is a number unknown or not read.
func WriteTable(out io.Writer, r Report) error {
	if r.Rates != nil {
		fmt.Fprintf(out, "Rates: instance %s's, over the last %.0fs (for the fleet, scrape every instance's /metrics).\n", r.Rates.Instance, r.Rates.WindowSeconds)
	} else {
		fmt.Fprintln(out, "Rates: none without a running instance (app stats --admin URL asks one); depths, backlog and poison counts read from the broker and the database.")
	}
	fmt.Fprintln(out)

	topics := [][]string{{"TOPIC", "PUBLISHED/S", "WAITING", "HANDLERS"}}
	for _, t := range r.Topics {
		topics = append(topics, []string{t.Topic, rate(t.PublishedPerSecond), count(t.Waiting), strconv.Itoa(len(t.Handlers))})
	}
	if err := table(out, topics); err != nil {
		return err
	}
	fmt.Fprintln(out)
	handlers := [][]string{{"HANDLER", "TOPIC", "CONCURRENCY", "RUNS/S", "ERRORS/S", "P95", "WAITING", "PENDING", "OLDEST", "CONSUMERS", "POISONED"}}
	for _, h := range r.Handlers {
		name := h.Handler
		if h.Broadcast {
			name += " (broadcast)"
		}
		handlers = append(handlers, []string{name, h.Topic, strconv.Itoa(h.Concurrency),
			rate(h.RunsPerSecond), rate(h.ErrorsPerSecond), seconds(h.P95Seconds),
			count(h.Waiting), count(h.Pending), seconds(h.OldestUnhandledSeconds), count(h.Consumers), count(h.Poisoned)})
	}
	if err := table(out, handlers); err != nil {
		return err
	}
	fmt.Fprintln(out)

	switch {
	case r.Outbox == nil:
	case r.Outbox.Backlog == 0:
		fmt.Fprintln(out, "Outbox: every committed event forwarded.")
	default:
		fmt.Fprintf(out, "Outbox: %d event(s) not forwarded yet, the oldest for %s.\n", r.Outbox.Backlog, seconds(&r.Outbox.OldestUnforwardedSeconds))
	}
	if r.Poison != nil {
		fmt.Fprintf(out, "Poison store: %d message(s) (app poison list).\n", r.Poison.Total)
	}
	sources := make([]string, 0, len(r.Errors))
	for source := range r.Errors {
		sources = append(sources, source)
	}
	slices.Sort(sources)
	for _, source := range sources {
		fmt.Fprintf(out, "Not read: %s: %s\n", source, r.Errors[source])
	}
	return nil
}

// table prints rows in aligned columns.
func table(out io.Writer, rows [][]string) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	return w.Flush()
}

func rate(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 2, 64)
}

func count(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10)
}

// seconds is a duration rounded to what a reader compares: milliseconds
// under a second, then tenths.
func seconds(v *float64) string {
	if v == nil {
		return "-"
	}
	d := time.Duration(*v * float64(time.Second))
	switch {
	case d == 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond / 10).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}
