-- Every change of a contact's score, the history the contact's page shows: from and to,
-- why (`rules`, with `rule:points` pairs, or `decay`), and when. Until now the history
-- was read from `Lead Score Changed` events, one stored for every change; those are now
-- stored only when a stage is crossed or a journey or segment reads them, and the
-- history is kept here, in one narrow row per change.
CREATE TABLE score_changes (
    id         BIGSERIAL PRIMARY KEY,
    contact_id BIGINT           NOT NULL,
    score      TEXT             NOT NULL,
    at         BIGINT           NOT NULL,
    previous   DOUBLE PRECISION NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
    reason     TEXT             NOT NULL,
    rules      TEXT             NOT NULL
);
CREATE INDEX score_changes_contact ON score_changes (contact_id, at);

-- The history so far, from the events that held it.
INSERT INTO score_changes (contact_id, score, at, previous, value, reason, rules)
SELECT e.contact_id,
       e.properties->>'score',
       e.timestamp,
       coalesce((e.properties->>'previous')::double precision, 0),
       coalesce((e.properties->>'value')::double precision, 0),
       coalesce(e.properties->>'reason', 'rules'),
       coalesce((SELECT string_agg((r->>'rule_id') || ':' || (r->>'points'), ',')
                 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.properties->'rules') = 'array'
                                                THEN e.properties->'rules' ELSE '[]'::jsonb END) AS r), '')
FROM events AS e
WHERE e.name = 'Lead Score Changed' AND e.properties->>'score' IS NOT NULL
ORDER BY e.id;
