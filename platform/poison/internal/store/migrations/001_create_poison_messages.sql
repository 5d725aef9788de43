-- Messages a handler gave up on, whatever the adapter, kept until they are
-- replayed or purged. One row per (handler, message): a replay that fails
-- again comes back as a new row.
CREATE TABLE poison_messages (
    id          TEXT PRIMARY KEY,
    message_id  TEXT NOT NULL,
    topic       TEXT NOT NULL,
    handler     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    payload     BYTEA NOT NULL,
    metadata    TEXT NOT NULL,
    poisoned_at TIMESTAMP NOT NULL,
    UNIQUE (handler, message_id)
);

CREATE INDEX poison_messages_topic_handler ON poison_messages (topic, handler);
