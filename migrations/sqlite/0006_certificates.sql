-- qrgate schema 0006: digital certificates. A certificate key is issued to a
-- customer out of band (identity checked by the operator) and enrolled by an
-- admin; its signature over a payment's details is the element that lifts a
-- payment to risk level A. Same in both dialects.
CREATE TABLE certificates (
    id          TEXT   NOT NULL PRIMARY KEY,
    customer_id TEXT   NOT NULL REFERENCES customers (id),
    public_key  TEXT   NOT NULL UNIQUE,
    status      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX certificates_customer ON certificates (customer_id);
