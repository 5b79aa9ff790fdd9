-- Live configuration across nodes (docs/operations.md, "Live configuration"): one
-- counter per kind of configuration a node keeps in memory (nudge_store::live::ConfigKind),
-- moved in the same transaction as the change. Nodes compare it with what they loaded
-- (on a PostgreSQL notification, and every few seconds in case one was missed).
CREATE TABLE config_versions (
    kind    TEXT   PRIMARY KEY, -- ConfigKind::as_str
    version BIGINT NOT NULL
);
