-- What the workspace counts per hour (see nudge_store::Metric), maintained as messages
-- change state, are opened or clicked, and as journey runs reach their goal.
CREATE TABLE hourly_stats (
    hour   INTEGER NOT NULL,   -- milliseconds since the epoch / 3,600,000 (UTC hours)
    metric TEXT    NOT NULL,
    value  REAL    NOT NULL,
    PRIMARY KEY (hour, metric)
);

-- What happened before this table existed, from the timeline events Nudge recorded.
INSERT INTO hourly_stats (hour, metric, value)
SELECT timestamp / 3600000,
       CASE name
           WHEN 'Message Sent' THEN 'messages_sent'
           WHEN 'Message Delivered' THEN 'messages_delivered'
           WHEN 'Message Bounced' THEN 'messages_bounced'
           WHEN 'Message Failed' THEN 'messages_failed'
           WHEN 'Email Opened' THEN 'messages_opened'
           WHEN 'Email Link Clicked' THEN 'messages_clicked'
       END,
       count(*)
FROM events
WHERE type = 'track'
  AND name IN ('Message Sent', 'Message Delivered', 'Message Bounced', 'Message Failed',
               'Email Opened', 'Email Link Clicked')
GROUP BY 1, 2;

-- Queued: each message once (a retry queues it again without a new message).
INSERT INTO hourly_stats (hour, metric, value)
SELECT created_at / 3600000, 'messages_queued', count(*) FROM messages GROUP BY 1;

INSERT INTO hourly_stats (hour, metric, value)
SELECT finished_at / 3600000, 'conversions', count(*) FROM journey_runs
WHERE finish_reason = 'goal' AND finished_at IS NOT NULL GROUP BY 1;
INSERT INTO hourly_stats (hour, metric, value)
SELECT finished_at / 3600000, 'revenue', sum(revenue) FROM journey_runs
WHERE finish_reason = 'goal' AND finished_at IS NOT NULL AND revenue IS NOT NULL GROUP BY 1;
