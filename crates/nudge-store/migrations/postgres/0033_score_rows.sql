-- One row per contact and score holds everything scoring reads and writes for it:
-- the state, the decay timer (`due_at`: when decay next takes the score across a
-- threshold someone reads) and the counters of the score's rules that still limit
-- something (`counters`: `rule:period=count`, comma-separated; see
-- nudge_core::scoring::Scoring::kept_counters). Each scored event used to write a row
-- in each of three tables (and one per counter); now it writes one. (Rule ids come
-- from a sequence: a deleted rule's id is never given again.)
ALTER TABLE contact_scores ADD COLUMN due_at BIGINT, ADD COLUMN counters TEXT NOT NULL DEFAULT '';

UPDATE contact_scores AS s SET due_at = t.due_at
FROM score_timers AS t
WHERE t.contact_id = s.contact_id AND t.score = s.score;

UPDATE contact_scores AS s SET counters = c.list
FROM (
    SELECT c.contact_id,
           coalesce(r.definition->>'score', 'lead_score') AS score,
           string_agg(c.rule_id || ':' || c.period || '=' || c.count, ',' ORDER BY c.rule_id, c.period) AS list
    FROM scoring_counters AS c JOIN scoring_rules AS r ON r.id = c.rule_id
    GROUP BY 1, 2
) AS c
WHERE c.contact_id = s.contact_id AND c.score = s.score;

DROP TABLE score_timers;
DROP TABLE scoring_counters;
CREATE INDEX contact_scores_due ON contact_scores (due_at) WHERE due_at IS NOT NULL;
