-- The journey inbox: events journeys must see (triggers, awaited events, goals),
-- queued in the same transaction that stores the event, so a crash between storing
-- an event and acting on it loses nothing. Which names go in is kept in
-- journey_event_names (set by the journey engine from the live journeys).

CREATE TABLE journey_event_names (
    name TEXT PRIMARY KEY
);

CREATE TABLE journey_inbox (
    id           INTEGER PRIMARY KEY,
    contact_id   INTEGER  NOT NULL,
    event_id     INTEGER  NOT NULL,
    name         TEXT    NOT NULL,
    properties   TEXT NOT NULL,
    at           INTEGER  NOT NULL,
    leased_until INTEGER
);
CREATE INDEX journey_inbox_contact ON journey_inbox (contact_id);
