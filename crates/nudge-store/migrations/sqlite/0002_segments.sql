-- Segment conditions read a contact's events of one name: this index answers counts
-- and first/last times without touching the events themselves.
CREATE INDEX events_contact_type_name_time ON events (contact_id, type, name, timestamp);

-- Segments and live membership.

CREATE TABLE segments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    definition  TEXT    NOT NULL,  -- JSON condition tree (nudge_core::segment::Condition)
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Who is in each segment now.
CREATE TABLE segment_members (
    segment_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    PRIMARY KEY (segment_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX segment_members_contact ON segment_members (contact_id);

-- Every stay in a segment, closed when the contact leaves.
CREATE TABLE segment_history (
    id         INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    exited_at  INTEGER
);
CREATE INDEX segment_history_contact ON segment_history (contact_id, segment_id);
CREATE INDEX segment_history_segment ON segment_history (segment_id, entered_at);

-- When time alone may change a contact's membership ("no purchase in 90 days").
CREATE TABLE segment_timers (
    segment_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    due_at     INTEGER NOT NULL,
    PRIMARY KEY (segment_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX segment_timers_due ON segment_timers (due_at);
CREATE INDEX segment_timers_contact ON segment_timers (contact_id);

-- Contacts whose facts changed since their memberships were last evaluated.
CREATE TABLE segment_dirty (
    contact_id INTEGER PRIMARY KEY,
    since      INTEGER NOT NULL
);
