-- name: SavePoisoned :exec
INSERT INTO poison_messages (id, message_id, topic, handler, reason, attempts, payload, metadata, poisoned_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (handler, message_id) DO UPDATE SET
    reason = excluded.reason, attempts = excluded.attempts, poisoned_at = excluded.poisoned_at;

-- name: ListPoisoned :many
SELECT * FROM poison_messages
WHERE (CAST(sqlc.arg(topic) AS TEXT) = '' OR topic = sqlc.arg(topic))
  AND (CAST(sqlc.arg(handler) AS TEXT) = '' OR handler = sqlc.arg(handler))
ORDER BY poisoned_at, id
LIMIT sqlc.arg(max_rows);

-- name: GetPoisoned :one
SELECT * FROM poison_messages WHERE id = $1;

-- name: DeletePoisoned :execrows
DELETE FROM poison_messages WHERE id = $1;

-- name: CountPoisoned :one
SELECT COUNT(*) FROM poison_messages
WHERE (CAST(sqlc.arg(topic) AS TEXT) = '' OR topic = sqlc.arg(topic))
  AND (CAST(sqlc.arg(handler) AS TEXT) = '' OR handler = sqlc.arg(handler));

-- name: PurgePoisoned :execrows
DELETE FROM poison_messages
WHERE (CAST(sqlc.arg(topic) AS TEXT) = '' OR topic = sqlc.arg(topic))
  AND (CAST(sqlc.arg(handler) AS TEXT) = '' OR handler = sqlc.arg(handler));

-- name: CountPoisonedByHandler :many
SELECT topic, handler, COUNT(*) AS messages FROM poison_messages
GROUP BY topic, handler
ORDER BY topic, handler;

-- name: PruneOldPoisoned :execrows
-- Removes, a chunk at a time, the messages poisoned before the retention.
DELETE FROM poison_messages
WHERE id IN (
    SELECT p.id FROM poison_messages p
    WHERE p.poisoned_at < sqlc.arg(before)
    LIMIT sqlc.arg(chunk)
);
