-- When time-triggered journeys (a date trait, a schedule) start runs: one timer per
-- journey and contact (contact 0: the journey itself, for a schedule of a segment).
CREATE TABLE journey_entry_timers (
    journey_id   BIGINT  NOT NULL,
    contact_id   BIGINT  NOT NULL,
    due_at       BIGINT  NOT NULL,
    leased_until BIGINT ,
    PRIMARY KEY (journey_id, contact_id)
);
CREATE INDEX journey_entry_timers_due ON journey_entry_timers (due_at);
-- The published version whose entry timers were set for all contacts.
ALTER TABLE journeys ADD COLUMN entries_scheduled BIGINT ;
