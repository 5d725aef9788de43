package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"text/tabwriter"
	"time"

	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/catalog"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
)

// Events runs `app events list|show|replay|scheduled|cancel ...` against the
// database: the event history the outbox keeps (outbox.retention) and the
// events scheduled for later. It needs no broker: a
// replay goes through the outbox, which the running app forwards.
func Events(ctx context.Context, cfg Config, logger *slog.Logger, args []string, out io.Writer, contexts ...fx.Option) error {
	cat, err := Catalog(cfg, logger, contexts...)
	if err != nil {
		return err
	}
	var d *db.DB
	return withDatabase(ctx, cfg, logger, contexts, func() error { return eventsCommand(ctx, d, cat.Handlers, args, out) }, &d)
}

const eventsUsage = `usage:
  app events list [--topic T] [--aggregate ID] [--correlation ID] [--since TIME] [--limit N]
  app events show ID
  app events replay --handler NAME [--topic T] [--aggregate ID] [--correlation ID] [--since TIME]
  app events scheduled [--limit N]
  app events cancel ID
TIME is RFC 3339 (2026-11-29T10:00:00Z) or a duration ago (24h)`

func eventsCommand(ctx context.Context, d *db.DB, handlers []catalog.Handler, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(eventsUsage)
	}
	flags := flag.NewFlagSet("events "+args[0], flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	topic := flags.String("topic", "", "")
	aggregate := flags.String("aggregate", "", "")
	correlation := flags.String("correlation", "", "")
	since := flags.String("since", "", "")
	limit := flags.Int("limit", 100, "")
	handler := flags.String("handler", "", "")
	if err := flags.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w\n%s", err, eventsUsage)
	}
	f := outbox.HistoryFilter{Topic: *topic, AggregateID: *aggregate, CorrelationID: *correlation, Limit: *limit}
	if *since != "" {
		t, err := outbox.ParseSince(*since, time.Now())
		if err != nil {
			return fmt.Errorf("events %s: --since: %w\n%s", args[0], err, eventsUsage)
		}
		f.Since = t
	}
	switch args[0] {
	case "list":
		if flags.NArg() > 0 {
			return fmt.Errorf("events list: unexpected %q\n%s", flags.Args(), eventsUsage)
		}
		events, err := outbox.History(ctx, d, f)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tOCCURRED AT\tTOPIC\tAGGREGATE\tCORRELATION\tREPLAY FOR")
		for _, e := range events {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.OccurredAt.Format(time.RFC3339), e.Topic, e.AggregateID, e.CorrelationID, e.ReplayFor)
		}
		return w.Flush()
	case "show":
		if flags.NArg() != 1 {
			return fmt.Errorf("events show: give one ID\n%s", eventsUsage)
		}
		e, err := outbox.HistoryEventByID(ctx, d, flags.Arg(0))
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(e)
	case "replay":
		if flags.NArg() > 0 {
			return fmt.Errorf("events replay: unexpected %q\n%s", flags.Args(), eventsUsage)
		}
		if *handler == "" {
			return fmt.Errorf("events replay: give --handler\n%s", eventsUsage)
		}
		i := slices.IndexFunc(handlers, func(h catalog.Handler) bool { return h.Name == *handler })
		if i < 0 {
			return fmt.Errorf("events replay: no handler %q in this binary (app catalog lists them)", *handler)
		}
		h := handlers[i]
		if h.Broadcast {
			return fmt.Errorf("events replay: %s is broadcast: each instance keeps its own state from live events, and a replay reaches one instance", h.Name)
		}
		f.Limit = 0 // every event the filters select
		n, err := outbox.ReplayHistory(ctx, d, h.Name, h.Topic, f)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "replayed %d event(s) of %s to %s; the running app forwards them\n", n, h.Topic, h.Name)
		return nil
	case "scheduled":
		if flags.NArg() > 0 {
			return fmt.Errorf("events scheduled: unexpected %q\n%s", flags.Args(), eventsUsage)
		}
		events, err := outbox.ListScheduled(ctx, d, *limit)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tDUE AT\tTOPIC\tAGGREGATE\tREPLAY FOR")
		for _, e := range events {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.ID, e.DueAt.Format(time.RFC3339Nano), e.Topic, e.Metadata[bus.MetaAggregateID], e.Metadata[bus.MetaReplayFor])
		}
		return w.Flush()
	case "cancel":
		if flags.NArg() != 1 {
			return fmt.Errorf("events cancel: give one ID\n%s", eventsUsage)
		}
		ok, err := outbox.CancelScheduled(ctx, d, flags.Arg(0))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("events cancel: no scheduled event %s: unknown, cancelled, or due already", flags.Arg(0))
		}
		fmt.Fprintf(out, "cancelled %s\n", flags.Arg(0))
		return nil
	}
	return fmt.Errorf("unknown events command %q\n%s", args[0], eventsUsage)
}
