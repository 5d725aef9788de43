package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/example/monolith/contexts/settings/internal/store"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/db/dbtest"
)

func TestQueries(t *testing.T) {
	dbtest.Each(t, []db.Migrations{store.Migrations}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		q := store.New(d)
		now := time.Now().UTC()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(q.UpsertDefinition(ctx, store.UpsertDefinitionParams{
			Context: "shop", Key: "open", Type: "bool", DefaultValue: "true", Allowed: "[]", Description: "takes orders", UpdatedAt: now,
		}))
		must(q.UpsertDefinition(ctx, store.UpsertDefinitionParams{
			Context: "shop", Key: "limit", Type: "int", DefaultValue: "10", Allowed: "[]",
			MinValue: sql.NullInt64{Int64: 1, Valid: true}, MaxValue: sql.NullInt64{Int64: 100, Valid: true}, UpdatedAt: now,
		}))
		must(q.UpsertDefinition(ctx, store.UpsertDefinitionParams{
			Context: "other", Key: "open", Type: "bool", DefaultValue: "false", Allowed: "[]", UpdatedAt: now,
		}))
		// Upserting an existing definition replaces it.
		must(q.UpsertDefinition(ctx, store.UpsertDefinitionParams{
			Context: "shop", Key: "open", Type: "bool", DefaultValue: "false", Allowed: "[]", Description: "accepts orders", UpdatedAt: now,
		}))

		rows, err := q.ListSettings(ctx, "shop")
		must(err)
		if len(rows) != 2 || rows[0].Key != "limit" || rows[1].Key != "open" {
			t.Fatalf("ListSettings = %+v, want limit and open, by key", rows)
		}
		if l := rows[0]; l.MinValue != (sql.NullInt64{Int64: 1, Valid: true}) || l.MaxValue != (sql.NullInt64{Int64: 100, Valid: true}) || l.Value.Valid {
			t.Fatalf("limit = %+v, want min 1, max 100 and no value", l)
		}
		if o := rows[1]; o.DefaultValue != "false" || o.Description != "accepts orders" || o.MinValue.Valid || o.MaxValue.Valid {
			t.Fatalf("open = %+v, want the upserted definition without bounds", o)
		}

		must(q.UpsertValue(ctx, store.UpsertValueParams{Context: "shop", Key: "limit", Value: "20", UpdatedAt: now}))
		must(q.UpsertValue(ctx, store.UpsertValueParams{Context: "shop", Key: "limit", Value: "30", UpdatedAt: now}))
		must(q.UpsertValue(ctx, store.UpsertValueParams{Context: "shop", Key: "open", Value: "true", UpdatedAt: now}))
		got, err := q.GetSetting(ctx, store.GetSettingParams{Context: "shop", Key: "limit"})
		must(err)
		if got.Value != (sql.NullString{String: "30", Valid: true}) || got.DefaultValue != "10" {
			t.Fatalf("GetSetting(limit) = %+v, want value 30 over default 10", got)
		}
		if _, err := q.GetSetting(ctx, store.GetSettingParams{Context: "shop", Key: "missing"}); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("GetSetting(missing) = %v, want sql.ErrNoRows", err)
		}

		must(q.DeleteValue(ctx, store.DeleteValueParams{Context: "shop", Key: "open"}))
		values, err := q.ListValues(ctx, "shop")
		must(err)
		if len(values) != 1 || values[0] != (store.ListValuesRow{Key: "limit", Value: "30"}) {
			t.Fatalf("ListValues = %+v, want only limit = 30", values)
		}

		must(q.DeleteDefinitions(ctx, "shop"))
		if rows, err := q.ListSettings(ctx, "shop"); err != nil || len(rows) != 0 {
			t.Fatalf("ListSettings after delete = %+v, %v; want none", rows, err)
		}
		if rows, err := q.ListSettings(ctx, "other"); err != nil || len(rows) != 1 {
			t.Fatalf("another context's definitions = %+v, %v; want them untouched", rows, err)
		}
	})
}
