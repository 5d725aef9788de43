package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/example/monolith/contexts/settings/internal/domain"
	"github.com/example/monolith/contexts/settings/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/setting"
	"github.com/example/monolith/platform/topics"
)

// StoreSchema replaces a context's definitions with the ones it declared
// and deletes the stored values they no longer accept, in one transaction.
// It publishes settings.setting.updated for every value kept, in the same
// transaction: a restarted instance's cache starts from the defaults and
// converges on these. Storing the same schema twice is harmless, so every
// instance stores every declared schema at start.
func (s *Service) StoreSchema(ctx context.Context, schema setting.Schema) error {
	defs, err := definitions(schema)
	if err != nil {
		return err
	}
	type dropped struct{ key, reason string }
	var (
		kept    []topics.SettingUpdatedV1
		removed []dropped
	)
	err = s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		q := store.New(s.db.Q(ctx))
		if err := q.DeleteDefinitions(ctx, schema.Context); err != nil {
			return fmt.Errorf("delete definitions of %s: %w", schema.Context, err)
		}
		now := db.Now()
		for _, d := range defs {
			allowed, err := json.Marshal(append([]string{}, d.Allowed...)) // '[]' rather than 'null'
			if err != nil {
				return err
			}
			if err := q.UpsertDefinition(ctx, store.UpsertDefinitionParams{
				Context: schema.Context, Key: d.Key, Type: d.Type, DefaultValue: string(d.Default), Allowed: string(allowed),
				MinValue: nullInt(d.Min), MaxValue: nullInt(d.Max), Description: d.Description, UpdatedAt: now,
			}); err != nil {
				return fmt.Errorf("store definition %s: %w", aggregateID(schema.Context, d.Key), err)
			}
		}
		byKey := make(map[string]domain.Definition, len(defs))
		for _, d := range defs {
			byKey[d.Key] = d
		}
		values, err := q.ListValues(ctx, schema.Context)
		if err != nil {
			return fmt.Errorf("list values of %s: %w", schema.Context, err)
		}
		for _, v := range values {
			reason := "no longer declared"
			if d, ok := byKey[v.Key]; ok {
				_, err := validate(d, json.RawMessage(v.Value))
				if err == nil {
					kept = append(kept, topics.SettingUpdatedV1{Context: schema.Context, Key: v.Key, Value: json.RawMessage(v.Value)})
					continue
				}
				reason = err.Error()
			}
			if err := q.DeleteValue(ctx, store.DeleteValueParams{Context: schema.Context, Key: v.Key}); err != nil {
				return fmt.Errorf("delete value %s: %w", aggregateID(schema.Context, v.Key), err)
			}
			removed = append(removed, dropped{v.Key, reason})
		}
		for _, u := range kept {
			if err := bus.Publish(ctx, outbox.Publisher(tx), topics.SettingUpdated, aggregateID(u.Context, u.Key), u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range removed {
		s.logger.InfoContext(ctx, "Setting value dropped by its new definition", "context", schema.Context, "key", r.key, "reason", r.reason)
	}
	return nil
}

// definitions checks a declared schema and returns its definitions in the
// declared order, defaults in canonical form. Keeping that order makes
// concurrent stores of one schema lock its rows in the same order, so they
// wait for each other instead of deadlocking.
func definitions(schema setting.Schema) ([]domain.Definition, error) {
	if schema.Context == "" {
		return nil, fmt.Errorf("%w: no context named", domain.ErrInvalidSchema)
	}
	defs := make([]domain.Definition, 0, len(schema.Settings))
	for _, sd := range schema.Settings {
		if sd.Key == "" {
			return nil, fmt.Errorf("%w: %s declares a setting without a key", domain.ErrInvalidSchema, schema.Context)
		}
		if slices.ContainsFunc(defs, func(d domain.Definition) bool { return d.Key == sd.Key }) {
			return nil, fmt.Errorf("%w: %s declares %s twice", domain.ErrInvalidSchema, schema.Context, sd.Key)
		}
		d := domain.Definition{
			Key: sd.Key, Type: sd.Type, Allowed: sd.Allowed,
			Min: sd.Min, Max: sd.Max, Description: sd.Description,
		}
		var err error
		if d.Default, err = validate(d, sd.Default); err != nil {
			return nil, fmt.Errorf("%w: %s default: %w", domain.ErrInvalidSchema, schema.Context, err)
		}
		defs = append(defs, d)
	}
	return defs, nil
}

func nullInt(n *int64) sql.NullInt64 {
	if n == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *n, Valid: true}
}
