-- Product recommendations (docs/recommendations.md): the catalogue, each refresh of
-- the item-to-item similarities (the latest finished one is current) with its lists
-- and best sellers.
CREATE TABLE products (
    id          TEXT    PRIMARY KEY,
    name        TEXT,
    price       DOUBLE PRECISION,
    category    TEXT,
    url         TEXT,
    image_url   TEXT,
    in_stock    BOOLEAN,           -- NULL: the catalogue does not say
    repeatable  BOOLEAN NOT NULL DEFAULT FALSE,
    source      TEXT    NOT NULL,  -- events | catalogue (imported or set through the API)
    updated_at  BIGINT NOT NULL
);

CREATE TABLE recommendation_models (
    id                BIGSERIAL PRIMARY KEY,
    started_at        BIGINT NOT NULL,
    finished_at       BIGINT,            -- NULL while its lists are being written
    -- The last event id the refresh saw: product events after it update the catalogue.
    event_cursor      BIGINT NOT NULL,
    contacts          BIGINT NOT NULL DEFAULT 0,
    products          BIGINT NOT NULL DEFAULT 0,
    pairs             BIGINT NOT NULL DEFAULT 0,
    similar_products  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE product_similarities (
    model_id    BIGINT NOT NULL,
    product_id  TEXT    NOT NULL,
    rank        BIGINT NOT NULL,
    similar_id  TEXT    NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    support     BIGINT NOT NULL,
    PRIMARY KEY (model_id, product_id, rank)
);

CREATE TABLE product_popularity (
    model_id    BIGINT NOT NULL,
    category    TEXT    NOT NULL,  -- '' over all products
    rank        BIGINT NOT NULL,
    product_id  TEXT    NOT NULL,
    buyers      BIGINT NOT NULL,
    PRIMARY KEY (model_id, category, rank)
);

-- Product events in contact order, for refreshing (shared::recommendations::touches).
CREATE INDEX events_products ON events (contact_id, timestamp)
    WHERE name IN ('Product Viewed', 'Product Added', 'Order Completed');
