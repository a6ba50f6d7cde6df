-- One active signing key, guaranteed by the database: a rotation or a first
-- start on another node can never leave two. A keyring written by an
-- earlier version with more than one active key keeps the newest active.
UPDATE gateway_keys SET state = 'verify_only'
WHERE state = 'active'
  AND kid <> (SELECT kid FROM gateway_keys WHERE state = 'active' ORDER BY created_at DESC, kid DESC LIMIT 1);
CREATE UNIQUE INDEX gateway_keys_one_active ON gateway_keys (state) WHERE state = 'active';
