-- Each contact's order totals (nudge_core::orders), kept apart from the events so that
-- event retention leaves them whole (docs/operations.md, "Aggregates that survive"):
-- how many `Order Completed` events the contact has, their revenue (each order's
-- `revenue`, else `total`, else `value`), the first and the last order's event time.
-- Written in the transaction that stores each order (shared::orders), combined by a
-- merge, deleted by an erasure; materialised as the traits `orders_count`,
-- `orders_revenue`, `first_order_at` and `last_order_at`.
CREATE TABLE contact_orders (
    contact_id BIGINT PRIMARY KEY,
    orders     BIGINT  NOT NULL,
    revenue    DOUBLE PRECISION NOT NULL,
    first_at   BIGINT  NOT NULL,
    last_at    BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- The orders stored before now are counted here, in this transaction, with their traits
-- (the rule is Rust: shared::orders::backfill).
-- nudge: the Rust step of this migration runs here
