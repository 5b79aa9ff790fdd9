-- Product recommendations (docs/recommendations.md): the catalogue, each refresh of
-- the item-to-item similarities (the latest finished one is current) with its lists
-- and best sellers.
CREATE TABLE products (
    id          TEXT    PRIMARY KEY,
    name        TEXT,
    price       REAL,
    category    TEXT,
    url         TEXT,
    image_url   TEXT,
    in_stock    INTEGER,           -- NULL: the catalogue does not say
    repeatable  INTEGER NOT NULL DEFAULT 0,
    source      TEXT    NOT NULL,  -- events | catalogue (imported or set through the API)
    updated_at  INTEGER NOT NULL
);

CREATE TABLE recommendation_models (
    id                INTEGER PRIMARY KEY,
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER,            -- NULL while its lists are being written
    -- The last event id the refresh saw: product events after it update the catalogue.
    event_cursor      INTEGER NOT NULL,
    contacts          INTEGER NOT NULL DEFAULT 0,
    products          INTEGER NOT NULL DEFAULT 0,
    pairs             INTEGER NOT NULL DEFAULT 0,
    similar_products  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE product_similarities (
    model_id    INTEGER NOT NULL,
    product_id  TEXT    NOT NULL,
    rank        INTEGER NOT NULL,
    similar_id  TEXT    NOT NULL,
    score       REAL    NOT NULL,
    support     INTEGER NOT NULL,
    PRIMARY KEY (model_id, product_id, rank)
);

CREATE TABLE product_popularity (
    model_id    INTEGER NOT NULL,
    category    TEXT    NOT NULL,  -- '' over all products
    rank        INTEGER NOT NULL,
    product_id  TEXT    NOT NULL,
    buyers      INTEGER NOT NULL,
    PRIMARY KEY (model_id, category, rank)
);

-- Product events in contact order, for refreshing (shared::recommendations::touches).
CREATE INDEX events_products ON events (contact_id, timestamp)
    WHERE name IN ('Product Viewed', 'Product Added', 'Order Completed');
