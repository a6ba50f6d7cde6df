-- The operator's decisions on what the risk checks flagged for review
-- (a payment they let through but asked a person to look at): one
-- decision per subject, kept (no delete path).
CREATE TABLE reviews (
    kind        TEXT   NOT NULL,
    subject_id  TEXT   NOT NULL,
    merchant_id TEXT   NOT NULL,
    decision    TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    decided_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, subject_id)
);
-- The flagged payments the operator's queue reads, by time.
CREATE INDEX payments_flagged ON payments (created_at) WHERE details LIKE '%flag_for_review%';
-- The complaints that report fraud (someone else's device or a code laid
-- over the shop's), by time, for the queue.
CREATE INDEX complaints_fraud ON complaints (created_at) WHERE reason IN ('not_authorised', 'code_tampered');
CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
