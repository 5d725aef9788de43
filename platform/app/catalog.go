package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/fx"

	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/catalog"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/httpx"
)

// Catalog describes what the application registers: every declared topic,
// and the handlers and routes the platform and the contexts contribute. It
// builds the serving app's graph with stand-ins for the database and the
// bus, which its constructors only keep, so it needs neither a database nor
// a broker.
func Catalog(cfg Config, logger *slog.Logger, contexts ...fx.Option) (catalog.Catalog, error) {
	var (
		handlers []bus.Handler
		routes   []httpx.Route
	)
	app := fx.New(
		platform(cfg, logger),
		fx.Options(contexts...),
		fx.Replace(
			&db.DB{Driver: cfg.Database.Driver},
			fx.Annotate(noBus{}, fx.As(new(bus.Publisher))),
			&bus.Bus{}, // the ops stats' routes keep it
		),
		fx.Invoke(fx.Annotate(func(hs []bus.Handler, rs []httpx.Route) {
			handlers, routes = hs, rs
		}, fx.ParamTags(`group:"bus.handlers"`, `group:"http.routes"`))),
	)
	if err := app.Err(); err != nil {
		return catalog.Catalog{}, err
	}
	return catalog.New(bus.Topics(), handlers, routes, cfg.Bus)
}

// noBus stands in for the bus while the catalog is built.
type noBus struct{}

func (noBus) Publish(string, ...*message.Message) error {
	return errors.New("the catalog publishes nothing")
}

// PrintCatalog runs `app catalog [--format F]`: the [Catalog] written to out.
func PrintCatalog(cfg Config, logger *slog.Logger, args []string, out io.Writer, contexts ...fx.Option) error {
	flags := flag.NewFlagSet("catalog", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	formats := strings.Join(catalog.Formats(), "|")
	format := flags.String("format", catalog.DefaultFormat, formats)
	usage := fmt.Sprintf("usage: app catalog [--format %s]", formats)
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("%w\n%s", err, usage)
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n%s", flags.Arg(0), usage)
	}
	c, err := Catalog(cfg, logger, contexts...)
	if err != nil {
		return err
	}
	return catalog.Write(out, c, *format)
}
