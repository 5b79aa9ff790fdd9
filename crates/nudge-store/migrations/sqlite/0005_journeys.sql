-- Journeys: definitions (versioned), runs (one contact going through one version),
-- their timers (indexed by due time, leased by the worker that fires them) and
-- their event waits (indexed by contact and event name, so an event finds the runs
-- it affects without scanning). A run's position and state are written together
-- with its timers, waits and outgoing messages in one transaction.

CREATE TABLE journeys (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    description       TEXT    NOT NULL DEFAULT '',
    -- draft | live | paused | stopped
    status            TEXT    NOT NULL,
    -- The latest saved version, and the one new runs start on (NULL until published).
    version           INTEGER  NOT NULL,
    published_version INTEGER,
    -- Who goes first when frequency caps defer messages (higher first).
    priority          INTEGER  NOT NULL DEFAULT 0,
    created_at        INTEGER  NOT NULL,
    updated_at        INTEGER  NOT NULL
);

CREATE TABLE journey_versions (
    journey_id INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (journey_id, version)
);

CREATE TABLE journey_runs (
    id            INTEGER PRIMARY KEY,
    journey_id    INTEGER  NOT NULL,
    version       INTEGER  NOT NULL,
    contact_id    INTEGER  NOT NULL,
    -- active | finished
    status        TEXT    NOT NULL,
    -- The step the run is at (NULL once finished).
    step          TEXT,
    -- The run's state as the journey core keeps it.
    state         TEXT NOT NULL,
    -- Makes entering idempotent: the same trigger (event id, segment entry) starts
    -- at most one run.
    entry_key     TEXT,
    entered_at    INTEGER  NOT NULL,
    updated_at    INTEGER  NOT NULL,
    finished_at   INTEGER,
    finish_reason TEXT
);
CREATE UNIQUE INDEX journey_runs_entry ON journey_runs (journey_id, entry_key) WHERE entry_key IS NOT NULL;
CREATE INDEX journey_runs_contact ON journey_runs (contact_id, journey_id);
CREATE INDEX journey_runs_step ON journey_runs (journey_id, status, step);

CREATE TABLE journey_timers (
    run_id       INTEGER  NOT NULL,
    -- What the timer is for, unique within the run (`wait`, `timeout`, ...).
    key          TEXT    NOT NULL,
    due_at       INTEGER  NOT NULL,
    leased_until INTEGER,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX journey_timers_due ON journey_timers (due_at);

CREATE TABLE journey_waits (
    run_id      INTEGER NOT NULL,
    contact_id  INTEGER NOT NULL,
    event       TEXT   NOT NULL,
    -- The value the event's match key must have (NULL: any event of that name).
    match_value TEXT,
    PRIMARY KEY (run_id, event)
);
CREATE INDEX journey_waits_contact ON journey_waits (contact_id, event);
