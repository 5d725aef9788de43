-- name: DeleteDefinitions :exec
DELETE FROM setting_definitions WHERE context = $1;

-- Upsert rather than insert: two instances storing the same schema
-- concurrently must not fail on each other's rows.
-- name: UpsertDefinition :exec
INSERT INTO setting_definitions (context, key, type, default_value, allowed, min_value, max_value, description, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (context, key) DO UPDATE SET
    type = excluded.type,
    default_value = excluded.default_value,
    allowed = excluded.allowed,
    min_value = excluded.min_value,
    max_value = excluded.max_value,
    description = excluded.description,
    updated_at = excluded.updated_at;

-- name: ListSettings :many
SELECT d.key, d.type, d.default_value, d.allowed, d.min_value, d.max_value, d.description, v.value
FROM setting_definitions d
LEFT JOIN setting_values v ON v.context = d.context AND v.key = d.key
WHERE d.context = $1
ORDER BY d.key;

-- name: GetSetting :one
SELECT d.key, d.type, d.default_value, d.allowed, d.min_value, d.max_value, d.description, v.value
FROM setting_definitions d
LEFT JOIN setting_values v ON v.context = d.context AND v.key = d.key
WHERE d.context = $1 AND d.key = $2;

-- name: ListValues :many
SELECT key, value FROM setting_values WHERE context = $1 ORDER BY key;

-- name: UpsertValue :exec
INSERT INTO setting_values (context, key, value, updated_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (context, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;

-- name: DeleteValue :exec
DELETE FROM setting_values WHERE context = $1 AND key = $2;
