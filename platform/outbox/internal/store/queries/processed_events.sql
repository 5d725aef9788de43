-- name: MarkProcessed :execrows
INSERT INTO processed_events (handler, event_id, processed_at)
VALUES ($1, $2, $3)
ON CONFLICT (handler, event_id) DO NOTHING;

-- name: PruneProcessed :execrows
-- Forgets, a chunk at a time, the records older than the retention.
DELETE FROM processed_events
WHERE (handler, event_id) IN (
    SELECT p.handler, p.event_id FROM processed_events p
    WHERE p.processed_at < sqlc.arg(before)
    LIMIT sqlc.arg(chunk)
);
