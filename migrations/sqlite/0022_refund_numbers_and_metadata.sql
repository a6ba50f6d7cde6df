-- A merchant's refund number (out_refund_no) is unique across all of the
-- merchant's refunds, as its out_trade_no is across its payments, so a
-- refund can be looked up by it. Refunds name their merchant for that.
-- Refunds made before this migration were unique per payment only: where a
-- merchant used one number on two payments, the earliest keeps it as its
-- unique number and the later ones are marked `number_shared` (still found
-- through their payment, never by number alone).
ALTER TABLE refunds ADD COLUMN merchant_id TEXT;
UPDATE refunds SET merchant_id = (SELECT p.merchant_id FROM payments p WHERE p.id = refunds.payment_id);
ALTER TABLE refunds ADD COLUMN number_shared BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE refunds SET number_shared = TRUE
 WHERE EXISTS (SELECT 1 FROM refunds r2
                WHERE r2.merchant_id = refunds.merchant_id
                  AND r2.out_refund_no = refunds.out_refund_no
                  AND (r2.created_at < refunds.created_at
                       OR (r2.created_at = refunds.created_at AND r2.id < refunds.id)));
CREATE UNIQUE INDEX refunds_merchant_number ON refunds (merchant_id, out_refund_no) WHERE NOT number_shared;
CREATE INDEX refunds_merchant_created ON refunds (merchant_id, created_at);

-- A merchant's own key-value notes (metadata) on orders and refunds; a
-- payment keeps its metadata in its details. JSON object text, NULL when
-- none was given.
ALTER TABLE orders ADD COLUMN metadata TEXT;
ALTER TABLE refunds ADD COLUMN metadata TEXT;
