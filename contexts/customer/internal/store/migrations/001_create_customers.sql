CREATE TABLE customers (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL UNIQUE,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL,
    tier       TEXT NOT NULL,
    active     BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE INDEX customers_created_at ON customers (created_at);

CREATE TABLE deals (
    id           TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    amount_cents BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    won_at       TIMESTAMP NOT NULL
);

CREATE INDEX deals_customer_id ON deals (customer_id);
