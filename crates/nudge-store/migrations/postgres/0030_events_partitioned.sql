-- Events partitioned by month (docs/operations.md, "Retention"): retention drops a
-- month's partition instead of deleting its rows.
--
-- The partition key is the event's `timestamp` (when it happened, as segments'
-- windows read it), in UTC months `events_pYYYYMM`, `[first ms of the month, first
-- ms of the next)`. Events outside every partition (imported history older than the
-- partitions, timestamps far ahead) land in `events_default`; the retention
-- singleton creates the coming months' partitions ahead and, when it adds a month,
-- moves that month's rows out of the default partition (`events_add_partition`).
--
-- De-duplication. A unique index of a partitioned table must include the partition
-- key, so `UNIQUE (message_id)` cannot stay on `events`, and `(message_id,
-- timestamp)` would not do: a retry's timestamp may differ (clock-skew correction
-- uses the retry's `sentAt`). Message ids are therefore claimed in
-- `event_message_ids`, a narrow unpartitioned table whose primary key is the message
-- id, by every statement that inserts into `events`, in the same statement (a
-- data-modifying CTE: one round trip, no trigger): ingestion's batch claims its ids
-- and fails on a taken one as it did on the unique index (the batch runs again and
-- finds it a duplicate); a timeline event claims its id with `ON CONFLICT DO
-- NOTHING` and inserts the event only when the claim is new; `nudge migrate-to`
-- claims the ids of the events it copies. A concurrent claim of the same id waits
-- for the first transaction and fails or is skipped if it commits. Retention forgets
-- the ids of the events it drops; erasing a contact forgets its events' ids (as
-- deleting their rows did with the unique index). Nothing looks events up by
-- message id (`event_message_ids` answers whether one is stored), so `events` has no
-- index on it.

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned ALTER COLUMN id DROP DEFAULT;
ALTER SEQUENCE events_id_seq OWNED BY NONE;

CREATE TABLE event_message_ids (
    message_id TEXT PRIMARY KEY
);

CREATE TABLE events (
    id           BIGINT NOT NULL DEFAULT nextval('events_id_seq'),
    message_id   TEXT   NOT NULL,
    contact_id   BIGINT NOT NULL,
    type         TEXT   NOT NULL,
    name         TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    timestamp    BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    properties   JSONB  NOT NULL,
    context      JSONB  NOT NULL,
    extra        JSONB
) PARTITION BY RANGE (timestamp);
ALTER SEQUENCE events_id_seq OWNED BY events.id;

CREATE TABLE events_default PARTITION OF events DEFAULT;

-- Adds the partition of the UTC month starting at `month` unless it exists: made as
-- a table of its own, filled with that month's rows from the default partition
-- (their message ids stay claimed), then attached. `true` if it was added.
CREATE FUNCTION events_add_partition(month DATE) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    part TEXT := 'events_p' || to_char(month, 'YYYYMM');
    lo BIGINT := (extract(epoch FROM month::timestamp AT TIME ZONE 'UTC') * 1000)::bigint;
    hi BIGINT := (extract(epoch FROM (month + interval '1 month')::timestamp AT TIME ZONE 'UTC') * 1000)::bigint;
BEGIN
    IF date_trunc('month', month) <> month THEN
        RAISE EXCEPTION 'events_add_partition: % is not the first day of a month', month;
    END IF;
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM events_default WHERE timestamp >= %s AND timestamp < %s RETURNING *)
         INSERT INTO %I SELECT * FROM moved', lo, hi, part);
    EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', part, lo, hi);
    RETURN true;
END $$;

-- The months that have events (within ten years back), and this month and the next
-- two; older or later events go to the default partition.
SELECT events_add_partition(m)
FROM (
    SELECT DISTINCT date_trunc('month', to_timestamp(timestamp / 1000.0) AT TIME ZONE 'UTC')::date AS m
    FROM events_unpartitioned
    WHERE timestamp >= (extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC') - interval '10 years') * 1000)::bigint
      AND timestamp < (extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months') * 1000)::bigint
    UNION
    SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + k * interval '1 month')::date
    FROM generate_series(0, 2) AS k
) AS months
ORDER BY m;

-- The rows, with their ids claimed (ids were unique, so none is skipped).
INSERT INTO event_message_ids (message_id) SELECT message_id FROM events_unpartitioned;
INSERT INTO events SELECT * FROM events_unpartitioned;
DROP TABLE events_unpartitioned;

-- The indexes it had, on every partition (the primary key must hold the partition key),
-- but the unique one on message_id (above).
ALTER TABLE events ADD PRIMARY KEY (id, timestamp);
CREATE INDEX events_contact_time ON events (contact_id, timestamp);
CREATE INDEX events_contact_type_name_time ON events (contact_id, type, name, timestamp);
CREATE INDEX events_purchases ON events (contact_id, timestamp) WHERE name = 'Order Completed';
CREATE INDEX events_products ON events (contact_id, timestamp)
    WHERE name IN ('Product Viewed', 'Product Added', 'Order Completed');
