-- Messages: templates (versioned), the delivery outbox, suppressions.

CREATE TABLE templates (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    description   TEXT    NOT NULL DEFAULT '',
    channel       TEXT    NOT NULL,
    version       BIGINT  NOT NULL,
    transactional BOOLEAN NOT NULL DEFAULT FALSE,
    topic         TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE TABLE template_versions (
    template_id BIGINT  NOT NULL,
    version     BIGINT  NOT NULL,
    content     JSONB   NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (template_id, version)
);

-- The outbox. A message waits while next_attempt_at is set (NULL once final); a
-- worker claims a due message by setting leased_until, so a crashed worker's claim
-- expires and the message is taken again.
CREATE TABLE messages (
    id               BIGSERIAL PRIMARY KEY,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    contact_id       BIGINT  NOT NULL,
    template_id      BIGINT  NOT NULL,
    template_version BIGINT  NOT NULL,
    channel          TEXT    NOT NULL,
    transactional    BOOLEAN NOT NULL,
    data             JSONB   NOT NULL,
    state            TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    leased_until     BIGINT,
    recipient        TEXT,
    error            TEXT,
    rendered         JSONB,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    sent_at          BIGINT,
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
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (channel, address)
);

-- Workspace-wide values Nudge generates once (the link-signing key, ...).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
