-- name: CreateUser :exec
INSERT INTO users (id, email, email_normalized, name, password_hash, status, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: GetUser :one
SELECT id, email, name, password_hash, status, created_at, updated_at
FROM users
WHERE id = $1;

-- name: UpdateUserStatus :exec
UPDATE users SET status = $2, updated_at = $3 WHERE id = $1;
