-- Revenue attributed to a run: that of the event that reached the journey's goal.
ALTER TABLE journey_runs ADD COLUMN revenue REAL;
