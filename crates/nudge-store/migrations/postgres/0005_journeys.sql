-- Journeys: definitions (versioned), runs (one contact going through one version),
-- their timers (indexed by due time, leased by the worker that fires them) and
-- their event waits (indexed by contact and event name, so an event finds the runs
-- it affects without scanning). A run's position and state are written together
-- with its timers, waits and outgoing messages in one transaction.

CREATE TABLE journeys (
    id                BIGSERIAL PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    description       TEXT    NOT NULL DEFAULT '',
    -- draft | live | paused | stopped
    status            TEXT    NOT NULL,
    -- The latest saved version, and the one new runs start on (NULL until published).
    version           BIGINT  NOT NULL,
    published_version BIGINT,
    -- Who goes first when frequency caps defer messages (higher first).
    priority          BIGINT  NOT NULL DEFAULT 0,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);

CREATE TABLE journey_versions (
    journey_id BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    definition JSONB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (journey_id, version)
);

CREATE TABLE journey_runs (
    id            BIGSERIAL PRIMARY KEY,
    journey_id    BIGINT  NOT NULL,
    version       BIGINT  NOT NULL,
    contact_id    BIGINT  NOT NULL,
    -- active | finished
    status        TEXT    NOT NULL,
    -- The step the run is at (NULL once finished).
    step          TEXT,
    -- The run's state as the journey core keeps it.
    state         JSONB NOT NULL,
    -- Makes entering idempotent: the same trigger (event id, segment entry) starts
    -- at most one run.
    entry_key     TEXT,
    entered_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    finished_at   BIGINT,
    finish_reason TEXT
);
CREATE UNIQUE INDEX journey_runs_entry ON journey_runs (journey_id, entry_key) WHERE entry_key IS NOT NULL;
CREATE INDEX journey_runs_contact ON journey_runs (contact_id, journey_id);
CREATE INDEX journey_runs_step ON journey_runs (journey_id, status, step);

CREATE TABLE journey_timers (
    run_id       BIGINT  NOT NULL,
    -- What the timer is for, unique within the run (`wait`, `timeout`, ...).
    key          TEXT    NOT NULL,
    due_at       BIGINT  NOT NULL,
    leased_until BIGINT,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX journey_timers_due ON journey_timers (due_at);

CREATE TABLE journey_waits (
    run_id      BIGINT NOT NULL,
    contact_id  BIGINT NOT NULL,
    event       TEXT   NOT NULL,
    -- The value the event's match key must have (NULL: any event of that name).
    match_value TEXT,
    PRIMARY KEY (run_id, event)
);
CREATE INDEX journey_waits_contact ON journey_waits (contact_id, event);
