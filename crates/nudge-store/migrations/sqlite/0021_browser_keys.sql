-- Write keys used from browsers (Segment's analytics.js): the web origins allowed to
-- send with the key (JSON list; `*` for any), and whether the key is restricted to
-- the browser endpoints (/v1/t, /v1/p, ... /v1/b and the settings document).
ALTER TABLE api_keys ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_keys ADD COLUMN browser_only INTEGER NOT NULL DEFAULT 0;
