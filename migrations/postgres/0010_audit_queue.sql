-- Audit entries are written with their movement into audit_queue and
-- chained into audit_log (seq, prev_hash, hash) shortly after, in one
-- transaction per pass that holds the audit_head row. A movement no longer
-- holds that one row until its commit, which made every payment of every
-- gateway wait for the one before it. Entries move from the queue to the
-- log; none is lost or changed on the way (the chain hash covers them as
-- queued).
CREATE TABLE audit_queue (
    id      BIGSERIAL NOT NULL PRIMARY KEY,
    at      BIGINT    NOT NULL,
    action  TEXT      NOT NULL,
    subject TEXT      NOT NULL,
    details TEXT      NOT NULL
);
