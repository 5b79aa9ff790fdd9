-- Customer lifetime value and churn risk (docs/predictions.md): each fit of the BG/NBD
-- and Gamma-Gamma models (the latest is the current one), and each contact's
-- predictions (nudge_core::predict::Prediction, also materialised as `predicted_*`
-- traits).
CREATE TABLE prediction_models (
    id                 INTEGER PRIMARY KEY,
    unit               TEXT    NOT NULL, -- days | weeks
    until_at           INTEGER NOT NULL, -- end of calibration
    fitted_at          INTEGER NOT NULL,
    r                  REAL    NOT NULL,
    alpha              REAL    NOT NULL,
    a                  REAL    NOT NULL,
    b                  REAL    NOT NULL,
    log_likelihood     REAL    NOT NULL,
    customers          INTEGER NOT NULL,
    p                  REAL,             -- Gamma-Gamma: NULL when it could not be fitted
    q                  REAL,
    gamma              REAL,
    gg_log_likelihood  REAL,
    repeat_customers   INTEGER NOT NULL,
    -- The last event id the fit saw: purchases after it update predictions one by one.
    event_cursor       INTEGER NOT NULL
);

CREATE TABLE contact_predictions (
    contact_id INTEGER PRIMARY KEY,
    prediction TEXT    NOT NULL, -- nudge_core::predict::Prediction
    as_of      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Purchases in contact order, for fitting (see shared::predictions::histories).
CREATE INDEX events_purchases ON events (contact_id, timestamp) WHERE name = 'Order Completed';
