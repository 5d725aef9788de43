-- Events published to be delivered later (bus.PublishAfter, bus.PublishAt,
-- bus.RetryAfter), kept until they are due, when the relay moves them into
-- the outbox in one transaction, or cancelled.
CREATE TABLE scheduled_events (
    id           TEXT PRIMARY KEY,
    topic        TEXT NOT NULL,
    due_at       TIMESTAMP NOT NULL,
    payload      BYTEA NOT NULL,
    metadata     TEXT NOT NULL,
    scheduled_at TIMESTAMP NOT NULL
);

CREATE INDEX scheduled_events_due_at ON scheduled_events (due_at);
