-- What queued a message, in columns of its own (it travelled inside `data` before):
-- the journey, run, step and visit of the send step. Campaigns will add theirs.
ALTER TABLE messages ADD COLUMN origin_journey_id INTEGER;
ALTER TABLE messages ADD COLUMN origin_run_id INTEGER;
ALTER TABLE messages ADD COLUMN origin_step TEXT;
ALTER TABLE messages ADD COLUMN origin_visit INTEGER;

-- Messages queued by journeys before: journey and run from `data.journey`, step and
-- visit from the key `run-{run}-step-{step}-{visit}` (the visit is the digits after
-- the last '-').
UPDATE messages SET
    origin_journey_id = json_extract(data, '$.journey.id'),
    origin_run_id = json_extract(data, '$.journey.run_id'),
    origin_step = substr(
        rtrim(substr(idempotency_key, length('run-' || json_extract(data, '$.journey.run_id') || '-step-') + 1), '0123456789'),
        1,
        length(rtrim(substr(idempotency_key, length('run-' || json_extract(data, '$.journey.run_id') || '-step-') + 1), '0123456789')) - 1
    ),
    origin_visit = CAST(substr(
        idempotency_key,
        length('run-' || json_extract(data, '$.journey.run_id') || '-step-')
          + length(rtrim(substr(idempotency_key, length('run-' || json_extract(data, '$.journey.run_id') || '-step-') + 1), '0123456789')) + 1
    ) AS INTEGER)
WHERE json_extract(data, '$.journey.id') IS NOT NULL
  AND idempotency_key LIKE 'run-' || json_extract(data, '$.journey.run_id') || '-step-%'
  -- ... and ends in '-' and a visit number, as PostgreSQL's pattern requires.
  AND rtrim(idempotency_key, '0123456789') != idempotency_key
  AND substr(rtrim(idempotency_key, '0123456789'), -1) = '-';

-- A run whose stored state cannot be read is set aside for inspection (status
-- 'set_aside', with the error), never reset.
ALTER TABLE journey_runs ADD COLUMN error TEXT;
