-- Messages: templates (versioned), the delivery outbox, suppressions.

CREATE TABLE templates (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    description   TEXT    NOT NULL DEFAULT '',
    channel       TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    transactional INTEGER NOT NULL DEFAULT 0,
    topic         TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE template_versions (
    template_id INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    content     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (template_id, version)
);

-- The outbox. A message waits while next_attempt_at is set (NULL once final); a
-- worker claims a due message by setting leased_until, so a crashed worker's claim
-- expires and the message is taken again.
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    contact_id       INTEGER NOT NULL,
    template_id      INTEGER NOT NULL,
    template_version INTEGER NOT NULL,
    channel          TEXT    NOT NULL,
    transactional    INTEGER NOT NULL,
    data             TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    leased_until     INTEGER,
    recipient        TEXT,
    error            TEXT,
    rendered         TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    -- The provider's id for the message (SMS sid, push Location), for delivery receipts.
    provider_id      TEXT
);
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX messages_contact ON messages (contact_id, id);
CREATE INDEX messages_state ON messages (state, id);
CREATE INDEX messages_provider ON messages (channel, provider_id) WHERE provider_id IS NOT NULL;

CREATE TABLE suppressions (
    channel    TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (channel, address)
);

-- Workspace-wide values Nudge generates once (the link-signing key, ...).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
