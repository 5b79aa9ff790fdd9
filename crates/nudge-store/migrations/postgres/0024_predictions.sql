-- Customer lifetime value and churn risk (docs/predictions.md): each fit of the BG/NBD
-- and Gamma-Gamma models (the latest is the current one), and each contact's
-- predictions (nudge_core::predict::Prediction, also materialised as `predicted_*`
-- traits).
CREATE TABLE prediction_models (
    id                 BIGSERIAL PRIMARY KEY,
    unit               TEXT    NOT NULL, -- days | weeks
    until_at           BIGINT  NOT NULL, -- end of calibration
    fitted_at          BIGINT  NOT NULL,
    r                  DOUBLE PRECISION NOT NULL,
    alpha              DOUBLE PRECISION NOT NULL,
    a                  DOUBLE PRECISION NOT NULL,
    b                  DOUBLE PRECISION NOT NULL,
    log_likelihood     DOUBLE PRECISION NOT NULL,
    customers          BIGINT  NOT NULL,
    p                  DOUBLE PRECISION,             -- Gamma-Gamma: NULL when it could not be fitted
    q                  DOUBLE PRECISION,
    gamma              DOUBLE PRECISION,
    gg_log_likelihood  DOUBLE PRECISION,
    repeat_customers   BIGINT  NOT NULL,
    -- The last event id the fit saw: purchases after it update predictions one by one.
    event_cursor       BIGINT  NOT NULL
);

CREATE TABLE contact_predictions (
    contact_id BIGINT PRIMARY KEY,
    prediction JSONB   NOT NULL, -- nudge_core::predict::Prediction
    as_of      BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- Purchases in contact order, for fitting (see shared::predictions::histories).
CREATE INDEX events_purchases ON events (contact_id, timestamp) WHERE name = 'Order Completed';
