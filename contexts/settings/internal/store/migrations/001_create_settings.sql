-- What each context announced at its last start; replaced on every announce.
CREATE TABLE setting_definitions (
    context       TEXT NOT NULL,
    key           TEXT NOT NULL,
    type          TEXT NOT NULL,
    default_value TEXT NOT NULL, -- JSON
    allowed       TEXT NOT NULL, -- JSON array of strings, '[]' when any string goes
    min_value     BIGINT,
    max_value     BIGINT,
    description   TEXT NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (context, key)
);

-- Values set through the API; a setting without a row has its default.
CREATE TABLE setting_values (
    context    TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL, -- JSON
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (context, key)
);
