// Command app runs the modular monolith: every bounded context in one
// process, talking over the event bus configured in the YAML file.
//
//	app [--config PATH]           serve HTTP and the event handlers (default)
//	app [--config PATH] migrate   apply database migrations and exit
//	app [--config PATH] poison    list, show, replay or purge poisoned messages; audit lists replays and purges
//	app [--config PATH] catalog   print the topics, handlers and routes (--format table|markdown|json|mermaid|asyncapi)
//	app [--config PATH] events    list or show the event history; replay it to one handler
//	app [--config PATH] stats     print each handler's lag and pending events, the outbox backlog and the poison counts (--json; --admin URL: a running instance's report, with rates)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/fx"

	"github.com/example/monolith/contexts/customer"
	"github.com/example/monolith/contexts/identity"
	"github.com/example/monolith/contexts/settings"
	"github.com/example/monolith/platform/app"
)

// contexts are the bounded contexts the binary runs: one line each.
var contexts = []fx.Option{
	identity.Module,
	customer.Module,
	settings.Module,
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("app", flag.ContinueOnError)
	configPath := flags.String("config", os.Getenv("APP_CONFIG"), "configuration file (YAML); empty: defaults and APP_* variables")
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "usage: app [--config PATH] [serve|migrate|poison ...|events ...|catalog ...|stats ...]")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	cfg, err := app.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	logger := app.NewLogger(cfg.Log)

	switch cmd := flags.Arg(0); cmd {
	case "", "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return app.Serve(ctx, cfg, logger, contexts...)
	case "migrate":
		return app.Migrate(cfg, logger, contexts...)
	case "poison":
		return app.Poison(context.Background(), cfg, logger, flags.Args()[1:], os.Stdout, contexts...)
	case "events":
		return app.Events(context.Background(), cfg, logger, flags.Args()[1:], os.Stdout, contexts...)
	case "catalog":
		return app.PrintCatalog(cfg, logger, flags.Args()[1:], os.Stdout, contexts...)
	case "stats":
		return app.Stats(context.Background(), cfg, logger, flags.Args()[1:], os.Stdout, contexts...)
	default:
		flags.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
}
