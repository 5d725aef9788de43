-- One row per event an idempotent handler has applied, written in the same
-- transaction as the handler's own writes.
CREATE TABLE processed_events (
    handler      TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (handler, event_id)
);
