-- A contact's scores move into its own row (`contacts.scoring`, JSON by score name:
-- each score's state, decay timer and the counters of its rules that can still limit
-- something; see crate::scoring::ScoreRows), with the earliest decay timer in
-- `score_due_at` for the engine's timer. A scored event used to read a score row and
-- the contact's traits and write both; now it reads and writes the one row it writes
-- anyway for the score trait (BENCHMARKS.md, ingestion with 50 scoring rules).
ALTER TABLE contacts ADD COLUMN scoring TEXT;
ALTER TABLE contacts ADD COLUMN score_due_at INTEGER;

-- The score rows stored before now are moved here (the row's format is Rust:
-- shared::scoring::move_score_rows).
-- nudge: the Rust step of this migration runs here

DROP TABLE contact_scores;
CREATE INDEX contacts_score_due ON contacts (score_due_at) WHERE score_due_at IS NOT NULL;
