-- Credentials have a lifecycle. A device remembers the API key it was
-- enrolled with (revoking that key revokes the device), and whether the
-- customer turned on biometric confirmation for it (with the PIN).
ALTER TABLE devices ADD COLUMN enrolled_by TEXT;
ALTER TABLE devices ADD COLUMN biometric_at BIGINT;
CREATE INDEX devices_enrolled_by ON devices (enrolled_by);
