-- name: RecordAudit :exec
INSERT INTO poison_audit (id, occurred_at, who, via, action, message_id, topic, handler, messages)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- name: ListAudit :many
SELECT * FROM poison_audit
ORDER BY occurred_at DESC, id DESC
LIMIT sqlc.arg(max_rows);
