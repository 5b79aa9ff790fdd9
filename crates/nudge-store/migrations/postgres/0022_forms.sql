-- Forms and their landing pages (`/f/{slug}`): the definition (nudge_core::form::
-- FormDefinition, JSON), views and submissions counted on the row for the report.
CREATE TABLE forms (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    slug        TEXT   NOT NULL UNIQUE,
    definition  JSONB  NOT NULL,
    views       BIGINT NOT NULL DEFAULT 0,
    submissions BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- One row per accepted submission: who (the contact, as merged since), the values
-- by field name (JSON), the consents given (JSON list), where it came from.
CREATE TABLE form_submissions (
    id           BIGSERIAL PRIMARY KEY,
    form_id      BIGINT NOT NULL REFERENCES forms (id) ON DELETE CASCADE,
    contact_id   BIGINT NOT NULL,
    email        TEXT   NOT NULL,
    answers      JSONB  NOT NULL,
    consents     JSONB  NOT NULL,
    source       TEXT   NOT NULL,
    submitted_at BIGINT NOT NULL
);
CREATE INDEX form_submissions_form ON form_submissions (form_id, id);
CREATE INDEX form_submissions_contact ON form_submissions (contact_id);
