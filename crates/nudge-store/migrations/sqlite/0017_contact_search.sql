-- Contact search (nudge_store::search): the text each contact is searched in (its
-- e-mail address, user id, phone and names, lower-cased, and its words' starts), written
-- by the store with every change of the contact, and an FTS5 trigram index over it.
ALTER TABLE contacts ADD COLUMN search TEXT;

-- The text of the contacts stored before now is written here, in this transaction (the
-- rule is Rust: shared::contacts::fill_search), before the index exists.
-- nudge: the Rust step of this migration runs here

-- External content: the index keeps no copy of the text. Case-sensitive because the
-- text and the terms are lower-cased in Rust, the same way for both backends.
CREATE VIRTUAL TABLE contact_search USING fts5(
    search,
    content = 'contacts',
    content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1'
);
INSERT INTO contact_search (contact_search) VALUES ('rebuild');

-- Kept current by the database itself: a new contact, a changed text, an erased or
-- merged-away contact. (An external-content index must be told the old text to forget.)
CREATE TRIGGER contact_search_insert AFTER INSERT ON contacts WHEN new.search IS NOT NULL BEGIN
    INSERT INTO contact_search (rowid, search) VALUES (new.id, new.search);
END;

CREATE TRIGGER contact_search_update AFTER UPDATE OF search ON contacts
WHEN old.search IS NOT new.search BEGIN
    INSERT INTO contact_search (contact_search, rowid, search)
    SELECT 'delete', old.id, old.search WHERE old.search IS NOT NULL;
    INSERT INTO contact_search (rowid, search) SELECT new.id, new.search WHERE new.search IS NOT NULL;
END;

CREATE TRIGGER contact_search_delete AFTER DELETE ON contacts WHEN old.search IS NOT NULL BEGIN
    INSERT INTO contact_search (contact_search, rowid, search) VALUES ('delete', old.id, old.search);
END;
