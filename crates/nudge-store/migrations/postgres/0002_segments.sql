-- Segment conditions read a contact's events of one name: this index answers counts
-- and first/last times without touching the events themselves.
CREATE INDEX events_contact_type_name_time ON events (contact_id, type, name, timestamp);

-- Segments and live membership; SQL functions the segment compiler uses.

CREATE TABLE segments (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT   NOT NULL,
    description TEXT   NOT NULL DEFAULT '',
    definition  JSONB  NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE segment_members (
    segment_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    entered_at BIGINT NOT NULL,
    PRIMARY KEY (segment_id, contact_id)
);
CREATE INDEX segment_members_contact ON segment_members (contact_id);

CREATE TABLE segment_history (
    id         BIGSERIAL PRIMARY KEY,
    segment_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    entered_at BIGINT NOT NULL,
    exited_at  BIGINT
);
CREATE INDEX segment_history_contact ON segment_history (contact_id, segment_id);
CREATE INDEX segment_history_segment ON segment_history (segment_id, entered_at);

CREATE TABLE segment_timers (
    segment_id BIGINT NOT NULL,
    contact_id BIGINT NOT NULL,
    due_at     BIGINT NOT NULL,
    PRIMARY KEY (segment_id, contact_id)
);
CREATE INDEX segment_timers_due ON segment_timers (due_at);
CREATE INDEX segment_timers_contact ON segment_timers (contact_id);

CREATE SEQUENCE segment_dirty_seq;
CREATE TABLE segment_dirty (
    contact_id BIGINT PRIMARY KEY,
    since      BIGINT NOT NULL
);

-- nudge_ts(value): a JSON string holding an ISO 8601 date or date-time, as
-- milliseconds since the epoch (UTC when no offset is given); NULL for anything else.
-- Mirrors nudge_core::parse_instant for the formats clients send.
CREATE FUNCTION nudge_ts(v jsonb) RETURNS bigint LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    s text;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) <> 'string' THEN
        RETURN NULL;
    END IF;
    s := btrim(v #>> '{}');
    IF s ~ '^\d{4}-\d{2}-\d{2}$' THEN
        RETURN floor(extract(epoch FROM (s::timestamp AT TIME ZONE 'UTC')) * 1000)::bigint;
    ELSIF s ~ '^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}(:?\d{2})?)$' THEN
        RETURN floor(extract(epoch FROM s::timestamptz) * 1000)::bigint;
    ELSIF s ~ '^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$' THEN
        RETURN floor(extract(epoch FROM (s::timestamp AT TIME ZONE 'UTC')) * 1000)::bigint;
    END IF;
    RETURN NULL;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

-- nudge_md(ms): 'MM-DD' of an instant in UTC.
CREATE FUNCTION nudge_md(ms bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(to_timestamp(ms / 1000.0) AT TIME ZONE 'UTC', 'MM-DD')
$$;
