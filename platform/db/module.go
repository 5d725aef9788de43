package db

import "go.uber.org/fx"

// ProvideMigrations contributes a context's migrations to those the
// application applies at start and on `app migrate`.
func ProvideMigrations(m Migrations) fx.Option {
	return fx.Provide(fx.Annotate(func() Migrations { return m }, fx.ResultTags(`group:"db.migrations"`)))
}
