-- Journey statistics per step, kept by the transitions that cause them: runs that
-- reached the step, messages it queued, and opens and clicks of those messages.

CREATE TABLE journey_step_stats (
    journey_id INTEGER NOT NULL,
    step       TEXT    NOT NULL,
    reached    INTEGER NOT NULL DEFAULT 0,
    sent       INTEGER NOT NULL DEFAULT 0,
    opened     INTEGER NOT NULL DEFAULT 0,
    clicked    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (journey_id, step)
);
