-- One segment timer per contact: the earliest moment time alone may change any of its
-- memberships. The engine evaluates every segment for a contact when its timer fires,
-- so one row per (segment, contact) only multiplied the writes.
CREATE TABLE segment_timers_new (
    contact_id INTEGER PRIMARY KEY,
    due_at     INTEGER NOT NULL
);
INSERT INTO segment_timers_new (contact_id, due_at)
    SELECT contact_id, min(due_at) FROM segment_timers GROUP BY contact_id;
DROP TABLE segment_timers;
ALTER TABLE segment_timers_new RENAME TO segment_timers;
CREATE INDEX segment_timers_due ON segment_timers (due_at);
