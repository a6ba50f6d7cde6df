-- qrgate schema 0008: linked cards and the people behind small merchants.
-- A card is stored as the processor's token, its brand, last four digits
-- and whether it is debit or credit; never the card number. Small merchants
-- onboarded with a personal ID carry `owner_ref`, an opaque reference to
-- that person (the acquirer's KYC id, never the ID number itself), so their
-- credit-card receipts are capped per person across all their merchant
-- entries. Same in both dialects.
CREATE TABLE cards (
    id          TEXT   NOT NULL PRIMARY KEY,
    customer_id TEXT   NOT NULL REFERENCES customers (id),
    processor   TEXT   NOT NULL,
    token       TEXT   NOT NULL UNIQUE,
    brand       TEXT   NOT NULL,
    last4       TEXT   NOT NULL,
    funding     TEXT   NOT NULL,
    exp_month   BIGINT NOT NULL,
    exp_year    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX cards_customer ON cards (customer_id);
ALTER TABLE merchants ADD COLUMN owner_ref TEXT;
