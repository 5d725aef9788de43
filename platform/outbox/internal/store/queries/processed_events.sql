-- name: MarkProcessed :execrows
INSERT INTO processed_events (handler, event_id, processed_at)
VALUES ($1, $2, $3)
ON CONFLICT (handler, event_id) DO NOTHING;
