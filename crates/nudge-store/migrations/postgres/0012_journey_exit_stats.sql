-- Runs that left each step by each of its exits (`next`, `yes`, `no`, `on_event`,
-- `on_timeout`, `cases[0].next`, `variants[1].next`, `default`), kept by the
-- transitions that take them.
CREATE TABLE journey_exit_stats (
    journey_id BIGINT  NOT NULL,
    step       TEXT    NOT NULL,
    exit       TEXT    NOT NULL,
    passed     BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (journey_id, step, exit)
);
