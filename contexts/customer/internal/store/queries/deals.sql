-- name: CreateDeal :exec
INSERT INTO deals (id, customer_id, amount_cents, currency, won_at)
VALUES ($1, $2, $3, $4, $5);
