-- Send-time optimisation (docs/send-time.md): each contact's engagement profile
-- (nudge_core::send_time::Profile: decayed engagements per hour of the week), and the
-- workspace's profile with where the engine's reading of engagement events stands.
CREATE TABLE contact_send_times (
    contact_id INTEGER PRIMARY KEY,
    profile    TEXT    NOT NULL, -- nudge_core::send_time::Profile
    updated_at INTEGER NOT NULL
);

CREATE TABLE send_time_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    profile      TEXT    NOT NULL, -- the workspace's nudge_core::send_time::Profile
    -- The last event id read: engagements after it are counted next.
    event_cursor INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

INSERT INTO send_time_state (id, profile, event_cursor, updated_at)
VALUES (1, '{"weights":{},"as_of":0,"engagements":0}', 0, 0);
