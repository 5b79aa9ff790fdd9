-- Contacts, their identities, merges, events and API keys.
-- Times are milliseconds since the Unix epoch (UTC), as on SQLite.

CREATE TABLE contacts (
    id            BIGSERIAL PRIMARY KEY,
    user_id       TEXT,
    email         TEXT,
    phone         TEXT,
    traits        JSONB  NOT NULL DEFAULT '{}',
    subscriptions JSONB  NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_seen_at  BIGINT
);
CREATE INDEX contacts_email ON contacts (email) WHERE email IS NOT NULL;

CREATE TABLE identities (
    kind       TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    contact_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_contact ON identities (contact_id);

CREATE TABLE contact_merges (
    from_id   BIGINT PRIMARY KEY,
    into_id   BIGINT NOT NULL,
    merged_at BIGINT NOT NULL
);
CREATE INDEX contact_merges_into ON contact_merges (into_id);

CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    message_id   TEXT   NOT NULL UNIQUE,
    contact_id   BIGINT NOT NULL,
    type         TEXT   NOT NULL,
    name         TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    timestamp    BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    properties   JSONB  NOT NULL,
    context      JSONB  NOT NULL,
    extra        JSONB
);
CREATE INDEX events_contact_time ON events (contact_id, timestamp);

CREATE TABLE api_keys (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    hash       TEXT   NOT NULL UNIQUE,
    prefix     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
