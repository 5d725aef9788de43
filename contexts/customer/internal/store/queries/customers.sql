-- name: CreateCustomer :execrows
-- Affects no row when the user already has a customer, so a redelivered
-- identity.user.registered creates nothing.
INSERT INTO customers (id, user_id, email, name, tier, active, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (user_id) DO NOTHING;

-- name: GetCustomer :one
SELECT id, user_id, email, name, tier, active, created_at, updated_at, deals_won
FROM customers
WHERE id = $1;

-- name: GetCustomerByUserID :one
SELECT id, user_id, email, name, tier, active, created_at, updated_at, deals_won
FROM customers
WHERE user_id = $1;

-- name: ListCustomers :many
SELECT id, user_id, email, name, tier, active, created_at, updated_at, deals_won
FROM customers
ORDER BY created_at DESC, id DESC
LIMIT $1;

-- name: UpdateCustomerDetails :one
-- A NULL argument keeps the column: concurrent updates of different fields
-- do not overwrite each other.
UPDATE customers
SET name = COALESCE(sqlc.narg(name), name),
    tier = COALESCE(sqlc.narg(tier), tier),
    updated_at = sqlc.arg(updated_at)
WHERE id = sqlc.arg(id)
RETURNING id, user_id, email, name, tier, active, created_at, updated_at, deals_won;

-- name: DeactivateCustomerOfUser :one
-- Returns no row when the customer is missing or already inactive, so only
-- one of several concurrent deliveries changes it.
UPDATE customers
SET active = FALSE, updated_at = $2
WHERE user_id = $1 AND active
RETURNING id, user_id, email, name, tier, active, created_at, updated_at, deals_won;

-- name: CountWonDeal :execrows
-- Not idempotent: a redelivered customer.deal.won counts once only because
-- the handler's processed-events record skips it.
UPDATE customers
SET deals_won = deals_won + 1
WHERE id = $1;
