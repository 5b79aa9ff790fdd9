-- Web push: the browser push subscriptions of contacts (RFC 8030). One row per
-- endpoint: a browser that subscribes again (or logs in as someone else) re-points
-- its row. A row is deleted when the push service answers 404/410 (the
-- subscription is gone), when the browser unsubscribes, and with its contact.

CREATE TABLE push_subscriptions (
    id           BIGSERIAL PRIMARY KEY,
    contact_id   BIGINT  NOT NULL,
    endpoint     TEXT    NOT NULL UNIQUE,
    -- The browser's P-256 public key and auth secret, base64url as it gives them.
    p256dh       TEXT    NOT NULL,
    auth         TEXT    NOT NULL,
    user_agent   TEXT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX push_subscriptions_contact ON push_subscriptions (contact_id, id);
