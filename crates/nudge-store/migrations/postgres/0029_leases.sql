-- Singleton leases (docs/operations.md, "Roles"): work that one node at a time does
-- (entry-timer setting, campaigns, model refits, ...) runs under the lease of its
-- name. A holder renews it before `expires_at`; once that has passed, any node may
-- take it (`shared::leases::acquire`, one conditional upsert for both backends).
CREATE TABLE leases (
    name        TEXT   PRIMARY KEY,
    holder      TEXT   NOT NULL, -- the node id: host:pid:random
    acquired_at BIGINT NOT NULL, -- since when this holder has held it (ms)
    expires_at  BIGINT NOT NULL  -- ms; the holder's clock at renewal plus the TTL
);
