-- qrgate schema 0005: a customer's payment PIN (PBKDF2-HMAC-SHA256, salted)
-- and its failure counter for lock-out. Same in postgres/0005.
CREATE TABLE customer_credentials (
    customer_id  TEXT   NOT NULL PRIMARY KEY REFERENCES customers (id),
    pin_hash     TEXT   NOT NULL,
    pin_salt     TEXT   NOT NULL,
    failures     BIGINT NOT NULL,
    locked_until BIGINT,
    updated_at   BIGINT NOT NULL
);
