-- qrgate schema 0009: one-time-password (TOTP, RFC 6238) enrollments. A
-- customer's newest enrollment is the one in force; older rows stay as the
-- record of what was enrolled when. The shared secret is stored as base32;
-- protect the database (or its disk) accordingly. Same in both dialects.
CREATE TABLE otp_enrollments (
    id          TEXT   NOT NULL PRIMARY KEY,
    customer_id TEXT   NOT NULL REFERENCES customers (id),
    secret      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX otp_enrollments_customer ON otp_enrollments (customer_id, created_at);
