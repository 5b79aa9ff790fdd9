-- Contact search (nudge_store::search): the text each contact is searched in (its
-- e-mail address, user id, phone and names, lower-cased, and its words' starts), written
-- by the store with every change of the contact, and a pg_trgm GIN index over it for
-- `search LIKE '%term%'`.

-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: the database's
-- owner may create it. It goes to `public` unless it is installed already (wherever
-- that is): extensions belong to the database, not to a schema Nudge may live in.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
EXCEPTION WHEN insufficient_privilege OR undefined_file OR invalid_schema_name THEN
    RAISE EXCEPTION 'Nudge''s contact search needs the pg_trgm extension: %', SQLERRM
        USING HINT = 'Install PostgreSQL''s contrib modules, then run CREATE EXTENSION pg_trgm; in this database as its owner or a superuser.';
END $$;

ALTER TABLE contacts ADD COLUMN search TEXT;

-- The text of the contacts stored before now is written here, in this transaction (the
-- rule is Rust: shared::contacts::fill_search), before the index exists: building it
-- afterwards takes half the time of keeping it through a million updates.
-- nudge: the Rust step of this migration runs here

-- The operator class named with the extension's schema, which need not be on the
-- search path.
DO $$
DECLARE
    ops TEXT;
BEGIN
    SELECT quote_ident(n.nspname) || '.gin_trgm_ops' INTO STRICT ops
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    EXECUTE format('CREATE INDEX contacts_search ON contacts USING gin (search %s)', ops);
END $$;
