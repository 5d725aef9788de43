-- name: ScheduleEvent :exec
INSERT INTO scheduled_events (id, topic, due_at, payload, metadata, scheduled_at)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: TakeDueEvents :many
-- Removes and returns the events due by now, oldest due first. Run in the
-- transaction that writes them into the outbox: on PostgreSQL a concurrent
-- relay's DELETE waits for it and then finds the rows gone.
DELETE FROM scheduled_events
WHERE id IN (
    SELECT s.id FROM scheduled_events s
    WHERE s.due_at <= sqlc.arg(now)
    ORDER BY s.due_at, s.id
    LIMIT sqlc.arg(max_events)
)
RETURNING id, topic, due_at, payload, metadata, scheduled_at;

-- name: CancelScheduledEvent :execrows
DELETE FROM scheduled_events WHERE id = $1;

-- name: ListScheduledEvents :many
SELECT id, topic, due_at, payload, metadata, scheduled_at FROM scheduled_events
ORDER BY due_at, id
LIMIT sqlc.arg(max_events);
