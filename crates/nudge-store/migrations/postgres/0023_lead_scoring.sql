-- Lead scoring (docs/lead-scoring.md): named scores with their half-life and stages,
-- the rules that give points, each contact's scores, the per-contact counters of
-- rules fired once or with a repeat cap, and the decay timers (when a score next
-- crosses a threshold someone reads).
CREATE TABLE scores (
    name       TEXT PRIMARY KEY,
    definition JSONB   NOT NULL, -- nudge_core::scoring::ScoreDefinition
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE scoring_rules (
    id         BIGSERIAL PRIMARY KEY,
    definition JSONB   NOT NULL, -- nudge_core::scoring::RuleDefinition
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- Bumped by every change of scores or rules: the write path's cached rules are
-- reloaded when it moves.
CREATE TABLE scoring_version (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO scoring_version (id, version) VALUES (1, 0);

-- A contact's score: `points` at `anchor_at` (decayed from there by the half-life),
-- the value last written to its trait, and the stage last recorded.
CREATE TABLE contact_scores (
    contact_id BIGINT  NOT NULL,
    score      TEXT    NOT NULL,
    points     DOUBLE PRECISION NOT NULL,
    anchor_at  BIGINT  NOT NULL,
    written    DOUBLE PRECISION NOT NULL,
    stage      TEXT,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (contact_id, score)
);

-- How often a rule fired for a contact in a period (`once`, `d<day>`, `w<week>`).
CREATE TABLE scoring_counters (
    contact_id BIGINT  NOT NULL,
    rule_id    BIGINT  NOT NULL,
    period     TEXT    NOT NULL,
    count      BIGINT  NOT NULL,
    PRIMARY KEY (contact_id, rule_id, period)
);

-- When decay next takes a contact's score across a threshold.
CREATE TABLE score_timers (
    contact_id BIGINT  NOT NULL,
    score      TEXT    NOT NULL,
    due_at     BIGINT  NOT NULL,
    PRIMARY KEY (contact_id, score)
);
CREATE INDEX score_timers_due ON score_timers (due_at);
