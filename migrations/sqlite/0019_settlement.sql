-- Merchant money, part two: the daily settlement.
--
-- A posting names the merchant whose accounts it moves (payments, refunds,
-- cancels, settlements, payouts), so a merchant's postings of a day are
-- one index range (settlement, the fund-flow statement). Postings written
-- before this migration have none: their money is still counted, through
-- the pending balance, as carried into the first day settled.
ALTER TABLE postings ADD COLUMN merchant_id TEXT;
CREATE INDEX postings_merchant ON postings (merchant_id, created_at) WHERE merchant_id IS NOT NULL;

-- A settled day is closed: a merchant's pending account takes no entry
-- dated before this time (Unix ms), so a payment of a settled day that
-- commits late is refused (and retried in the next day), never lost from
-- the settlement or added to a closed day's statement.
ALTER TABLE accounts ADD COLUMN closed_until BIGINT;

-- One settlement per merchant and business day (Asia/Shanghai by
-- default): the day's figures, what it carried in and out, and what it
-- moved from pending to available.
CREATE TABLE settlements (
    merchant_id       TEXT   NOT NULL,
    business_date     TEXT   NOT NULL,
    currency          TEXT   NOT NULL,
    starts_at         BIGINT NOT NULL,
    ends_at           BIGINT NOT NULL,
    payments_count    BIGINT NOT NULL,
    payments_minor    BIGINT NOT NULL,
    refunds_count     BIGINT NOT NULL,
    refunds_minor     BIGINT NOT NULL,
    fees_minor        BIGINT NOT NULL,
    net_minor         BIGINT NOT NULL,
    carried_in_minor  BIGINT NOT NULL,
    settled_minor     BIGINT NOT NULL,
    carried_out_minor BIGINT NOT NULL,
    posting_id        TEXT,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, business_date)
);

-- Who runs a periodic job of several nodes' (the daily settlement): a
-- node holds the lease until it expires or it gives it up.
CREATE TABLE job_leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
