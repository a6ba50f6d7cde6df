-- Secrets of the gateway itself, sealed at rest like the others: the PIN
-- pepper (mixed into every PIN hash, so a copy of the database alone does
-- not let PINs be guessed offline).
CREATE TABLE gateway_secrets (
    name       TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
