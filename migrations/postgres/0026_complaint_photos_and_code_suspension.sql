-- Photos a payer adds to their complaint (QG-COMPLAINT-PHOTO-BYTES,
-- QG-COMPLAINT-PHOTOS): kept as they came, numbered from 1 per complaint,
-- the same picture once per complaint. Append-only.
CREATE TABLE complaint_photos (
    complaint_id TEXT   NOT NULL REFERENCES complaints (id),
    seq          BIGINT NOT NULL,
    content_type TEXT   NOT NULL,
    -- Hex SHA-256 of the bytes.
    sha256       TEXT   NOT NULL,
    size_bytes   BIGINT NOT NULL,
    bytes        BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (complaint_id, seq)
);
CREATE UNIQUE INDEX complaint_photos_same ON complaint_photos (complaint_id, sha256);

-- The static code a complaint's payment was made with, so the payers who
-- report one code tampered can be counted (QG-COMPLAINT-TAMPER-REPORTS).
ALTER TABLE complaints ADD COLUMN static_code_id TEXT;
-- Complaints filed before this migration name it from their payment.
UPDATE complaints k SET static_code_id = p.details::jsonb ->> 'static_code_id'
    FROM payments p WHERE p.id = k.payment_id;
CREATE INDEX complaints_tampered ON complaints (static_code_id, created_at)
    WHERE reason = 'code_tampered' AND static_code_id IS NOT NULL;

-- A static code suspended because several payers reported it tampered:
-- scans are refused until the operator clears it (reports before that
-- no longer count) or confirms it (the code is revoked).
ALTER TABLE static_codes ADD COLUMN suspended_at BIGINT;
ALTER TABLE static_codes ADD COLUMN reports_cleared_at BIGINT;
CREATE INDEX static_codes_suspended ON static_codes (suspended_at)
    WHERE suspended_at IS NOT NULL AND revoked_at IS NULL;
CREATE TRIGGER complaint_photos_no_update BEFORE UPDATE ON complaint_photos
    FOR EACH ROW EXECUTE FUNCTION qrgate_append_only();
CREATE TRIGGER complaint_photos_no_delete BEFORE DELETE ON complaint_photos
    FOR EACH ROW EXECUTE FUNCTION qrgate_append_only();
