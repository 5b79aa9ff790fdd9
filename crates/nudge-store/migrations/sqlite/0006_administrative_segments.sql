-- Administrative segments (test contacts, employees): their members are left out of
-- every other segment.
ALTER TABLE segments ADD COLUMN administrative INTEGER NOT NULL DEFAULT 0;
