-- Every change of a contact's score, the history the contact's page shows: from and to,
-- why (`rules`, with `rule:points` pairs, or `decay`), and when. Until now the history
-- was read from `Lead Score Changed` events, one stored for every change; those are now
-- stored only when a stage is crossed or a journey or segment reads them, and the
-- history is kept here, in one narrow row per change.
CREATE TABLE score_changes (
    id         INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL,
    score      TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    previous   REAL    NOT NULL,
    value      REAL    NOT NULL,
    reason     TEXT    NOT NULL,
    rules      TEXT    NOT NULL
);
CREATE INDEX score_changes_contact ON score_changes (contact_id, at);

-- The history so far, from the events that held it.
INSERT INTO score_changes (contact_id, score, at, previous, value, reason, rules)
SELECT e.contact_id,
       json_extract(e.properties, '$.score'),
       e.timestamp,
       coalesce(json_extract(e.properties, '$.previous'), 0),
       coalesce(json_extract(e.properties, '$.value'), 0),
       coalesce(json_extract(e.properties, '$.reason'), 'rules'),
       coalesce((SELECT group_concat(json_extract(r.value, '$.rule_id') || ':' || json_extract(r.value, '$.points'), ',')
                 FROM json_each(e.properties, '$.rules') AS r), '')
FROM events AS e
WHERE e.name = 'Lead Score Changed' AND json_extract(e.properties, '$.score') IS NOT NULL
ORDER BY e.id;
