-- Send-time optimisation (docs/send-time.md): each contact's engagement profile
-- (nudge_core::send_time::Profile: decayed engagements per hour of the week), and the
-- workspace's profile with where the engine's reading of engagement events stands.
CREATE TABLE contact_send_times (
    contact_id BIGINT PRIMARY KEY,
    profile    JSONB  NOT NULL, -- nudge_core::send_time::Profile
    updated_at BIGINT NOT NULL
);

CREATE TABLE send_time_state (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    profile      JSONB  NOT NULL, -- the workspace's nudge_core::send_time::Profile
    -- The last event id read: engagements after it are counted next.
    event_cursor BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

INSERT INTO send_time_state (id, profile, event_cursor, updated_at)
VALUES (1, '{"weights":{},"as_of":0,"engagements":0}', 0, 0);
