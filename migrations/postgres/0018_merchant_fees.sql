-- Merchant money, part one: fees and the accounts a merchant's balance is
-- read from.
--
-- A merchant's fee schedule (basis points of each payment, and a minimum
-- fee in minor units). Merchants onboarded before fees keep 0: no fee.
ALTER TABLE merchants ADD COLUMN fee_rate_bps BIGINT NOT NULL DEFAULT 0;
ALTER TABLE merchants ADD COLUMN fee_min_minor BIGINT NOT NULL DEFAULT 0;

-- The fee a payment costs its merchant when it succeeds, and the part of
-- it a refund gave back (the ledger check compares both with the postings).
ALTER TABLE payments ADD COLUMN fee_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refunds ADD COLUMN fee_minor BIGINT NOT NULL DEFAULT 0;

-- A merchant's pending account (`settlement:<merchant>:<currency>`) takes
-- refunds of payments already settled out of it: it may go below zero,
-- and a negative pending balance is carried forward, never paid out.
UPDATE accounts SET allow_negative = TRUE WHERE kind = 'merchant_settlement';

-- The merchant's available balance (settled, may be paid out) and the
-- money on its way to the merchant's bank, for merchants onboarded before.
INSERT INTO accounts (id, kind, owner_id, currency, allow_negative, balance_minor, created_at)
    SELECT 'available:' || id || ':' || currency, 'merchant_available', id, currency, FALSE, 0, created_at
    FROM merchants ON CONFLICT DO NOTHING;
INSERT INTO accounts (id, kind, owner_id, currency, allow_negative, balance_minor, created_at)
    SELECT 'payout:' || id || ':' || currency, 'merchant_payout', id, currency, FALSE, 0, created_at
    FROM merchants ON CONFLICT DO NOTHING;
