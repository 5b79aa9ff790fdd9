-- PostgreSQL's migration 30 partitions `events` by month and claims message ids in a
-- table of their own, so that retention can drop a month whole. SQLite keeps one
-- events table with its unique message ids: retention deletes old rows in small
-- batches (`sqlite/retention.rs`). Nothing changes here; the number stays in step.
SELECT 1;
