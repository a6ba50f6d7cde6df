-- qrgate schema 0003: merchants, customers, devices, API keys, static codes,
-- orders, online-issued payment codes, webhook endpoints.
-- Same tables, columns, nullability and indexes in sqlite/0003.

CREATE TABLE merchants (
    id         TEXT   NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    city       TEXT   NOT NULL,
    country    TEXT   NOT NULL,
    mcc        TEXT   NOT NULL,
    currency   TEXT   NOT NULL,
    category   TEXT   NOT NULL,
    name_local TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE customers (
    id            TEXT   NOT NULL PRIMARY KEY,
    account_class TEXT   NOT NULL,
    level_a_cap   BIGINT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE devices (
    id          TEXT   NOT NULL PRIMARY KEY,
    customer_id TEXT   NOT NULL REFERENCES customers (id),
    kid         TEXT   NOT NULL UNIQUE,
    public_key  TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX devices_customer ON devices (customer_id);

CREATE TABLE api_keys (
    id         TEXT   NOT NULL PRIMARY KEY,
    key_hash   TEXT   NOT NULL UNIQUE,
    role       TEXT   NOT NULL,
    subject_id TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE static_codes (
    id          TEXT   NOT NULL PRIMARY KEY,
    merchant_id TEXT   NOT NULL REFERENCES merchants (id),
    payload     TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX static_codes_merchant ON static_codes (merchant_id, created_at);

CREATE TABLE orders (
    id           TEXT   NOT NULL PRIMARY KEY,
    merchant_id  TEXT   NOT NULL REFERENCES merchants (id),
    amount_minor BIGINT NOT NULL,
    currency     TEXT   NOT NULL,
    reference    TEXT   NOT NULL,
    out_trade_no TEXT,
    status       TEXT   NOT NULL,
    payload      TEXT   NOT NULL,
    payment_id   TEXT,
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX orders_merchant ON orders (merchant_id, created_at);
CREATE INDEX orders_open_expiry ON orders (status, expires_at);
CREATE UNIQUE INDEX orders_out_trade_no ON orders (merchant_id, out_trade_no);

CREATE TABLE issued_codes (
    code        TEXT   NOT NULL PRIMARY KEY,
    customer_id TEXT   NOT NULL REFERENCES customers (id),
    device_id   TEXT,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX issued_codes_expires ON issued_codes (expires_at);

CREATE TABLE webhook_endpoints (
    id          TEXT   NOT NULL PRIMARY KEY,
    merchant_id TEXT   NOT NULL REFERENCES merchants (id),
    url         TEXT   NOT NULL,
    secret      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled_at BIGINT
);
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id);
