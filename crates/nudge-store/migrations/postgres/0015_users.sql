-- People who sign in to the web UI, and their sessions. API keys stay the way
-- programs authenticate; a user is a person with a role.
CREATE TABLE users (
    id             BIGSERIAL PRIMARY KEY,
    email          TEXT    NOT NULL UNIQUE,  -- lower-cased
    role           TEXT    NOT NULL,         -- 'owner' | 'marketer' | 'analyst'
    password_hash  TEXT    NOT NULL,         -- Argon2id, PHC string
    locale         TEXT,                     -- NULL: the workspace's default
    created_at     BIGINT NOT NULL,
    password_set_at BIGINT NOT NULL
);

-- A signed-in browser. The cookie carries a random token; only its SHA-256 is kept.
CREATE TABLE sessions (
    token_hash   TEXT    PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf         TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL            -- absolute expiry
);
CREATE INDEX sessions_user ON sessions (user_id);
