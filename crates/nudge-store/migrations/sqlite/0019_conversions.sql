-- Conversions (track events the workspace counts as conversions) and the message each
-- is attributed to by last touch (nudge_core::attribution), recorded once per event.
CREATE TABLE conversions (
    event_id    INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    revenue     REAL,
    -- The message it is attributed to, how it touched the contact, and its origin.
    message_id  INTEGER,
    touch       TEXT,
    campaign_id INTEGER,
    variant     INTEGER,
    journey_id  INTEGER,
    step        TEXT,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX conversions_at ON conversions (at);
CREATE INDEX conversions_contact ON conversions (contact_id, at);

-- A message's first attributed conversion (converted recipients are counted once) and
-- the revenue attributed to it so far (for revenue per recipient and its variance).
ALTER TABLE messages ADD COLUMN first_converted_at INTEGER;
ALTER TABLE messages ADD COLUMN attributed_revenue REAL NOT NULL DEFAULT 0;

-- A journey step's unique opens and clicks (messages opened or clicked at least once),
-- and the conversions attributed to its messages.
ALTER TABLE journey_step_stats ADD COLUMN unique_opened INTEGER NOT NULL DEFAULT 0;
ALTER TABLE journey_step_stats ADD COLUMN unique_clicked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE journey_step_stats ADD COLUMN converted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE journey_step_stats ADD COLUMN conversions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE journey_step_stats ADD COLUMN conversion_revenue REAL NOT NULL DEFAULT 0;

-- Message counters per hour and scope (`campaign:3`, `journey:5`, `channel:email`):
-- recipients, sent, delivered, bounced, failed, opened and clicked (unique and total),
-- conversions, converted and revenue (nudge_core::protocol::CampaignCounter names),
-- kept as messages change; reports read these, never the events.
CREATE TABLE report_hourly (
    hour    INTEGER NOT NULL,
    scope   TEXT    NOT NULL,
    counter TEXT    NOT NULL,
    value   REAL    NOT NULL,
    PRIMARY KEY (scope, hour, counter)
);
CREATE INDEX report_hourly_hour ON report_hourly (hour);

-- A campaign's deliverability by recipient domain.
CREATE TABLE campaign_domains (
    campaign_id INTEGER NOT NULL,
    domain      TEXT    NOT NULL,
    counter     TEXT    NOT NULL,
    value       REAL    NOT NULL,
    PRIMARY KEY (campaign_id, domain, counter)
);
