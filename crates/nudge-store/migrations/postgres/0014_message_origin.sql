-- What queued a message, in columns of its own (it travelled inside `data` before):
-- the journey, run, step and visit of the send step. Campaigns will add theirs.
ALTER TABLE messages ADD COLUMN origin_journey_id BIGINT;
ALTER TABLE messages ADD COLUMN origin_run_id BIGINT;
ALTER TABLE messages ADD COLUMN origin_step TEXT;
ALTER TABLE messages ADD COLUMN origin_visit INTEGER;

-- Messages queued by journeys before: journey and run from `data.journey`, step and
-- visit from the key `run-{run}-step-{step}-{visit}`.
UPDATE messages SET
    origin_journey_id = (data->'journey'->>'id')::bigint,
    origin_run_id = (data->'journey'->>'run_id')::bigint,
    origin_step = substring(idempotency_key FROM '^run-[0-9]+-step-(.*)-[0-9]+$'),
    origin_visit = substring(idempotency_key FROM '-([0-9]+)$')::int
WHERE data->'journey'->>'id' IS NOT NULL
  AND idempotency_key ~ ('^run-' || (data->'journey'->>'run_id') || '-step-.*-[0-9]+$');

-- A run whose stored state cannot be read is set aside for inspection (status
-- 'set_aside', with the error), never reset.
ALTER TABLE journey_runs ADD COLUMN error TEXT;
