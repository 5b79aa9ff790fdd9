-- Forms and their landing pages (`/f/{slug}`): the definition (nudge_core::form::
-- FormDefinition, JSON), views and submissions counted on the row for the report.
CREATE TABLE forms (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    slug        TEXT    NOT NULL UNIQUE,
    definition  TEXT    NOT NULL,
    views       INTEGER NOT NULL DEFAULT 0,
    submissions INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One row per accepted submission: who (the contact, as merged since), the values
-- by field name (JSON), the consents given (JSON list), where it came from.
CREATE TABLE form_submissions (
    id           INTEGER PRIMARY KEY,
    form_id      INTEGER NOT NULL REFERENCES forms (id) ON DELETE CASCADE,
    contact_id   INTEGER NOT NULL,
    email        TEXT    NOT NULL,
    answers      TEXT    NOT NULL,
    consents     TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    submitted_at INTEGER NOT NULL
);
CREATE INDEX form_submissions_form ON form_submissions (form_id, id);
CREATE INDEX form_submissions_contact ON form_submissions (contact_id);
