-- Journey statistics per step, kept by the transitions that cause them: runs that
-- reached the step, messages it queued, and opens and clicks of those messages.

CREATE TABLE journey_step_stats (
    journey_id BIGINT NOT NULL,
    step       TEXT    NOT NULL,
    reached    BIGINT NOT NULL DEFAULT 0,
    sent       BIGINT NOT NULL DEFAULT 0,
    opened     BIGINT NOT NULL DEFAULT 0,
    clicked    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (journey_id, step)
);
