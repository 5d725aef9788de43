-- What operators did to the poison store, one row per replay or purge: who
-- (the admin token's id, or 'local'), through what (http or cli), which
-- message or which filter (an empty filter selected every message), and how
-- many messages it touched. The application only ever inserts.
CREATE TABLE poison_audit (
    id          TEXT PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    who         TEXT NOT NULL,
    via         TEXT NOT NULL,
    action      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    topic       TEXT NOT NULL,
    handler     TEXT NOT NULL,
    messages    BIGINT NOT NULL
);

CREATE INDEX poison_audit_occurred_at ON poison_audit (occurred_at);
