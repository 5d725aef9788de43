package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/example/monolith/contexts/settings/internal/domain"
	"github.com/example/monolith/contexts/settings/internal/store"
	"github.com/example/monolith/platform/bus"
	"github.com/example/monolith/platform/db"
	"github.com/example/monolith/platform/outbox"
	"github.com/example/monolith/platform/topics"
)

// Update sets a setting's value and returns it as stored. A value the
// definition rejects stores nothing and is published as
// settings.validation.failed (straight to the bus: a rejected request
// writes nothing); an accepted one is published as settings.setting.updated,
// in the same transaction, when it differs from the current value (the
// stored one, or the default), since caches hold that already.
func (s *Service) Update(ctx context.Context, contextName, key string, value json.RawMessage) (json.RawMessage, error) {
	var stored json.RawMessage
	err := s.db.InTx(ctx, func(ctx context.Context, tx *db.Tx) error {
		q := store.New(s.db.Q(ctx))
		row, err := q.GetSetting(ctx, store.GetSettingParams{Context: contextName, Key: key})
		if errors.Is(err, sql.ErrNoRows) {
			return domain.ErrSettingNotFound
		}
		if err != nil {
			return fmt.Errorf("load setting %s: %w", aggregateID(contextName, key), err)
		}
		current, err := settingOf(store.ListSettingsRow(row))
		if err != nil {
			return err
		}
		if stored, err = validate(current.Definition, value); err != nil {
			return err
		}
		if err := q.UpsertValue(ctx, store.UpsertValueParams{Context: contextName, Key: key, Value: string(stored), UpdatedAt: db.Now()}); err != nil {
			return err
		}
		if bytes.Equal(stored, current.Value) {
			return nil
		}
		return bus.Publish(ctx, outbox.Publisher(tx), topics.SettingUpdated, aggregateID(contextName, key),
			topics.SettingUpdatedV1{Context: contextName, Key: key, Value: stored})
	})
	var invalid domain.ValidationError
	if errors.As(err, &invalid) {
		if err := bus.Publish(ctx, s.pub, topics.ValidationFailed, aggregateID(contextName, key),
			topics.ValidationFailedV1{Context: contextName, Key: key, Value: value, Reason: invalid.Reason}); err != nil {
			return nil, err
		}
		return nil, invalid
	}
	if err != nil {
		return nil, err
	}
	return stored, nil
}
