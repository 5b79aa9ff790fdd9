-- Contacts, their identities, merges, events and API keys.
-- Times are milliseconds since the Unix epoch (UTC); JSON is stored as text.

CREATE TABLE contacts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- ids are never reused after an erasure
    user_id       TEXT,
    email         TEXT,
    phone         TEXT,
    traits        TEXT    NOT NULL DEFAULT '{}',
    subscriptions TEXT    NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX contacts_email ON contacts (email) WHERE email IS NOT NULL;

-- Every external identifier points at exactly one contact.
CREATE TABLE identities (
    kind       TEXT    NOT NULL,  -- 'user_id' | 'anonymous_id'
    value      TEXT    NOT NULL,
    contact_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX identities_contact ON identities (contact_id);

-- A merged-away contact id keeps resolving to the survivor (chains are flattened).
CREATE TABLE contact_merges (
    from_id   INTEGER PRIMARY KEY,
    into_id   INTEGER NOT NULL,
    merged_at INTEGER NOT NULL
);
CREATE INDEX contact_merges_into ON contact_merges (into_id);

CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    message_id   TEXT    NOT NULL UNIQUE,
    contact_id   INTEGER NOT NULL,
    type         TEXT    NOT NULL,
    name         TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    timestamp    INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    properties   TEXT    NOT NULL,
    context      TEXT    NOT NULL,
    extra        TEXT
);
CREATE INDEX events_contact_time ON events (contact_id, timestamp);

CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,  -- 'admin' | 'write'
    name       TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
