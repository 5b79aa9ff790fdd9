-- Unsubscribes and spam complaints through a journey step's messages.
ALTER TABLE journey_step_stats ADD COLUMN unsubscribed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE journey_step_stats ADD COLUMN complained INTEGER NOT NULL DEFAULT 0;

-- Clicks per link of what sent the messages: `owner` is `campaign:3` or `journey:5`,
-- `part` the variant's number or the step's name. Unique clicks count a message's
-- first click of a link (message_link_clicks holds which message clicked which link).
CREATE TABLE link_clicks (
    owner         TEXT    NOT NULL,
    part          TEXT    NOT NULL,
    url           TEXT    NOT NULL,
    clicks        INTEGER NOT NULL DEFAULT 0,
    unique_clicks INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, part, url)
) WITHOUT ROWID;
CREATE TABLE message_link_clicks (
    message_id INTEGER NOT NULL,
    url        TEXT    NOT NULL,
    PRIMARY KEY (message_id, url)
) WITHOUT ROWID;

-- The holdout's conversions (for the lift over the holdout): a held-out recipient's
-- first conversion within the attribution window after the campaign started, and the
-- revenue of its conversions in that window.
ALTER TABLE campaign_recipients ADD COLUMN converted_at INTEGER;
ALTER TABLE campaign_recipients ADD COLUMN revenue REAL;
CREATE INDEX campaign_recipients_held_out ON campaign_recipients (contact_id) WHERE state = 'held_out';
