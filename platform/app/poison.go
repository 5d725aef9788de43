package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"go.uber.org/fx"

	"github.com/example/monolith/platform/httpx"
	"github.com/example/monolith/platform/poison"
)

// Poison runs `app poison list|show|replay|purge|audit ...` against the
// database; it needs no broker (a replay goes through the outbox, which the
// running app forwards). Replays and purges are audited as done by "local"
// through the CLI.
func Poison(ctx context.Context, cfg Config, logger *slog.Logger, args []string, out io.Writer, contexts ...fx.Option) error {
	var store *poison.Store
	return withDatabase(ctx, cfg, logger, contexts, func() error { return poisonCommand(ctx, store, args, out) }, &store)
}

const poisonUsage = `usage:
  app poison list [--topic T] [--handler H] [--limit N]
  app poison show ID
  app poison replay ID | --topic T | --handler H | --all   (filters combine; --all: every message)
  app poison purge ID | --topic T | --handler H | --all    (filters combine; --all: every message)
  app poison audit [--limit N]`

func poisonCommand(ctx context.Context, s *poison.Store, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(poisonUsage)
	}
	flags := flag.NewFlagSet("poison "+args[0], flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	topic := flags.String("topic", "", "only messages from this topic")
	handler := flags.String("handler", "", "only messages this handler gave up on")
	limit := flags.Int("limit", 100, "at most this many messages or audit entries")
	all := flags.Bool("all", false, "every message the filters select")
	if err := flags.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w\n%s", err, poisonUsage)
	}
	if flags.NArg() > 1 {
		return fmt.Errorf("poison %s: unexpected %q (flags go before the ID)\n%s", args[0], flags.Args()[1:], poisonUsage)
	}
	filter := poison.Filter{Topic: *topic, Handler: *handler, Limit: *limit, All: *all}
	id := flags.Arg(0)
	bulk := *all || *topic != "" || *handler != ""
	switch args[0] {
	case "show":
		if id == "" {
			return fmt.Errorf("poison show: give an ID\n%s", poisonUsage)
		}
	case "replay", "purge":
		if id != "" && bulk {
			return fmt.Errorf("poison %s: give an ID or filters, not both\n%s", args[0], poisonUsage)
		}
		if id == "" && !bulk {
			return fmt.Errorf("poison %s: give an ID, a filter (--topic, --handler) or --all for every message\n%s", args[0], poisonUsage)
		}
	}
	by := poison.Actor{Who: httpx.LocalOperator, Via: poison.ViaCLI}

	switch args[0] {
	case "list":
		msgs, err := s.List(ctx, filter)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tPOISONED AT\tTOPIC\tHANDLER\tATTEMPTS\tREASON")
		for _, m := range msgs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", m.ID, m.PoisonedAt.Format("2006-01-02T15:04:05Z"), m.Topic, m.Handler, m.Attempts, summary(m.Reason))
		}
		return w.Flush()
	case "show":
		m, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			poison.Message
			Payload string `json:"payload"`
		}{m, string(m.Payload)})
	case "replay":
		n := 1
		var err error
		if bulk {
			n, err = s.ReplayAll(ctx, by, filter)
		} else {
			err = s.Replay(ctx, by, id)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "replayed %d message(s)\n", n)
		return nil
	case "purge":
		n := 1
		var err error
		if bulk {
			n, err = s.PurgeAll(ctx, by, filter)
		} else {
			err = s.Purge(ctx, by, id)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "purged %d message(s)\n", n)
		return nil
	case "audit":
		entries, err := s.Audit(ctx, *limit)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "AT\tWHO\tVIA\tACTION\tTARGET\tMESSAGES")
		for _, e := range entries {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", e.At.Format("2006-01-02T15:04:05Z"), e.Who, e.Via, e.Action, e.Target(), e.Messages)
		}
		return w.Flush()
	}
	return fmt.Errorf("unknown poison command %q\n%s", args[0], poisonUsage)
}

// summary is the first line of a reason, cut for a table cell.
func summary(reason string) string {
	reason, _, _ = strings.Cut(reason, "\n")
	if len(reason) > 80 {
		reason = reason[:77] + "..."
	}
	return reason
}
