-- The events list (GET /v1/events): each outbox event names the merchant
-- it is for, so a merchant's events are one index range, newest first.
ALTER TABLE outbox ADD COLUMN merchant_id TEXT;
UPDATE outbox SET merchant_id = payload::jsonb ->> 'merchant_id' WHERE merchant_id IS NULL;
CREATE INDEX outbox_merchant ON outbox (merchant_id, seq) WHERE merchant_id IS NOT NULL;
