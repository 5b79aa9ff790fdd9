-- The journey inbox: events journeys must see (triggers, awaited events, goals),
-- queued in the same transaction that stores the event, so a crash between storing
-- an event and acting on it loses nothing. Which names go in is kept in
-- journey_event_names (set by the journey engine from the live journeys).

CREATE TABLE journey_event_names (
    name TEXT PRIMARY KEY
);

CREATE TABLE journey_inbox (
    id           BIGSERIAL PRIMARY KEY,
    contact_id   BIGINT  NOT NULL,
    event_id     BIGINT  NOT NULL,
    name         TEXT    NOT NULL,
    properties   JSONB NOT NULL,
    at           BIGINT  NOT NULL,
    leased_until BIGINT
);
CREATE INDEX journey_inbox_contact ON journey_inbox (contact_id);
