-- Webhook endpoints have a lifecycle: a deleted endpoint is kept (its
-- deliveries stay readable) but no longer listed or sent to, and a rotated
-- secret keeps signing beside the new one until previous_until, so a
-- receiver can switch without dropping events.
ALTER TABLE webhook_endpoints ADD COLUMN deleted_at BIGINT;
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN previous_until BIGINT;
