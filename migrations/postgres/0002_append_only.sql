-- Ledger entries, postings and the audit log are append-only: corrections
-- are new postings, and records are kept (no delete path; see README, retention).
CREATE FUNCTION qrgate_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION qrgate_append_only();
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION qrgate_append_only();
CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings
    FOR EACH ROW EXECUTE FUNCTION qrgate_append_only();
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION qrgate_append_only();
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION qrgate_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION qrgate_append_only();
