-- Lead scoring (docs/lead-scoring.md): named scores with their half-life and stages,
-- the rules that give points, each contact's scores, the per-contact counters of
-- rules fired once or with a repeat cap, and the decay timers (when a score next
-- crosses a threshold someone reads).
CREATE TABLE scores (
    name       TEXT PRIMARY KEY,
    definition TEXT    NOT NULL, -- nudge_core::scoring::ScoreDefinition
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE scoring_rules (
    id         INTEGER PRIMARY KEY,
    definition TEXT    NOT NULL, -- nudge_core::scoring::RuleDefinition
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Bumped by every change of scores or rules: the write path's cached rules are
-- reloaded when it moves.
CREATE TABLE scoring_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO scoring_version (id, version) VALUES (1, 0);

-- A contact's score: `points` at `anchor_at` (decayed from there by the half-life),
-- the value last written to its trait, and the stage last recorded.
CREATE TABLE contact_scores (
    contact_id INTEGER NOT NULL,
    score      TEXT    NOT NULL,
    points     REAL    NOT NULL,
    anchor_at  INTEGER NOT NULL,
    written    REAL    NOT NULL,
    stage      TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (contact_id, score)
) WITHOUT ROWID;

-- How often a rule fired for a contact in a period (`once`, `d<day>`, `w<week>`).
CREATE TABLE scoring_counters (
    contact_id INTEGER NOT NULL,
    rule_id    INTEGER NOT NULL,
    period     TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (contact_id, rule_id, period)
) WITHOUT ROWID;

-- When decay next takes a contact's score across a threshold.
CREATE TABLE score_timers (
    contact_id INTEGER NOT NULL,
    score      TEXT    NOT NULL,
    due_at     INTEGER NOT NULL,
    PRIMARY KEY (contact_id, score)
) WITHOUT ROWID;
CREATE INDEX score_timers_due ON score_timers (due_at);
