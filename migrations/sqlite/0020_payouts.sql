-- Merchant money, part three: payouts to the merchant's bank account.
--
-- The account payouts go to (digits only); none: no payouts.
ALTER TABLE merchants ADD COLUMN bank_account TEXT;

-- A payout moves the merchant's available money to its payout account
-- when it is made, then to the bank's clearing account when the bank pays
-- (or back to available when it refuses for good, or sends it back).
CREATE TABLE payouts (
    id              TEXT   NOT NULL PRIMARY KEY,
    merchant_id     TEXT   NOT NULL REFERENCES merchants (id),
    amount_minor    BIGINT NOT NULL,
    currency        TEXT   NOT NULL,
    bank_account    TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT,
    failure         TEXT,
    bank_reference  TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX payouts_merchant ON payouts (merchant_id, created_at);
-- The payouts still waiting for the bank, by when they are next tried.
CREATE INDEX payouts_pending ON payouts (next_attempt_at) WHERE status = 'pending';
-- At most one payout of a merchant waits at a time.
CREATE UNIQUE INDEX payouts_one_pending ON payouts (merchant_id) WHERE status = 'pending';

-- The gateway's fees are kept per merchant (`fees:<merchant>:<currency>`),
-- so payments to different merchants never meet on one account row.
INSERT OR IGNORE INTO accounts (id, kind, owner_id, currency, allow_negative, balance_minor, created_at)
    SELECT 'fees:' || id || ':' || currency, 'fee_revenue', id, currency, 0, 0, created_at
    FROM merchants;
