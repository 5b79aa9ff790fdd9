-- A run's revision: every transition written adds one. A transition computed from an
-- older revision is not written (another worker moved the run meanwhile).
ALTER TABLE journey_runs ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
