-- One row per contact and score holds everything scoring reads and writes for it:
-- the state, the decay timer (`due_at`: when decay next takes the score across a
-- threshold someone reads) and the counters of the score's rules that still limit
-- something (`counters`: `rule:period=count`, comma-separated; see
-- nudge_core::scoring::Scoring::kept_counters). Each scored event used to write a row
-- in each of three tables (and one per counter); now it writes one.
ALTER TABLE contact_scores ADD COLUMN due_at INTEGER;
ALTER TABLE contact_scores ADD COLUMN counters TEXT NOT NULL DEFAULT '';

UPDATE contact_scores SET due_at = (
    SELECT t.due_at FROM score_timers AS t
    WHERE t.contact_id = contact_scores.contact_id AND t.score = contact_scores.score
);
UPDATE contact_scores SET counters = coalesce((
    SELECT group_concat(c.rule_id || ':' || c.period || '=' || c.count, ',')
    FROM scoring_counters AS c JOIN scoring_rules AS r ON r.id = c.rule_id
    WHERE c.contact_id = contact_scores.contact_id
      AND coalesce(json_extract(r.definition, '$.score'), 'lead_score') = contact_scores.score
), '');

DROP TABLE score_timers;
DROP TABLE scoring_counters;
CREATE INDEX contact_scores_due ON contact_scores (due_at) WHERE due_at IS NOT NULL;

-- A deleted rule's id is never given again (its counters are dropped only when the
-- contact's score row is next written): AUTOINCREMENT.
CREATE TABLE scoring_rules_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    definition TEXT    NOT NULL, -- nudge_core::scoring::RuleDefinition
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO scoring_rules_new (id, definition, created_at, updated_at)
SELECT id, definition, created_at, updated_at FROM scoring_rules;
DROP TABLE scoring_rules;
ALTER TABLE scoring_rules_new RENAME TO scoring_rules;
