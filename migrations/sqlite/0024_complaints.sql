-- A payer's complaint about one of their payments, and its steps (who did
-- what, when, in their words). A complaint moves along the table in
-- qrgate-core's state.rs, each move guarded by its status and version.
CREATE TABLE complaints (
    id                TEXT   NOT NULL PRIMARY KEY,
    payment_id        TEXT   NOT NULL REFERENCES payments (id),
    merchant_id       TEXT   NOT NULL REFERENCES merchants (id),
    customer_id       TEXT   NOT NULL,
    reason            TEXT   NOT NULL,
    description       TEXT   NOT NULL,
    -- What the payer disputes (at most what was left unrefunded).
    amount_minor      BIGINT NOT NULL,
    currency          TEXT   NOT NULL,
    status            TEXT   NOT NULL,
    resolution        TEXT,
    -- Refunded on the spot when filed (QG-COMPLAINT-INSTANT-REFUND).
    instant           BOOLEAN NOT NULL DEFAULT 0,
    -- Money returned to the payer under this complaint.
    refunded_minor    BIGINT NOT NULL DEFAULT 0,
    -- When whoever's move it is must have moved (merchant, payer, or the
    -- end of the merchant's contest window); NULL when it is the operator's.
    due_at            BIGINT,
    -- The end of the merchant's resolution deadline (QG-COMPLAINT-RESOLVE).
    resolve_by        BIGINT NOT NULL,
    first_response_at BIGINT,
    escalated_at      BIGINT,
    resolved_at       BIGINT,
    -- A parked ticket is back in the operator's queue at this time.
    revisit_at        BIGINT,
    -- When an instant refund left the payer's 30-day cap counter.
    cap_released_at   BIGINT,
    -- The refund number of a card refund made under this complaint that
    -- the processor has not confirmed yet (the jobs ask it again).
    processor_pending TEXT,
    -- When the jobs ask the processor for it next (NULL: at once).
    processor_next_try_at BIGINT,
    version           BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
-- One complaint at a time per payment: a new one only once it is resolved.
CREATE UNIQUE INDEX complaints_one_open ON complaints (payment_id) WHERE status <> 'resolved';
CREATE INDEX complaints_merchant ON complaints (merchant_id, created_at);
CREATE INDEX complaints_customer ON complaints (customer_id, created_at);
CREATE INDEX complaints_created ON complaints (created_at);
-- What the sweeper looks at: moves whose time is up.
CREATE INDEX complaints_due ON complaints (due_at) WHERE due_at IS NOT NULL;
-- Card refunds the processor has not confirmed yet.
CREATE INDEX complaints_processor_pending ON complaints (processor_next_try_at) WHERE processor_pending IS NOT NULL;
-- Instant refunds still counted in their payer's cap.
CREATE INDEX complaints_capped ON complaints (customer_id, created_at) WHERE instant AND cap_released_at IS NULL;

CREATE TABLE complaint_steps (
    complaint_id TEXT   NOT NULL REFERENCES complaints (id),
    seq          BIGINT NOT NULL,
    actor        TEXT   NOT NULL,
    action       TEXT   NOT NULL,
    body         TEXT,
    amount_minor BIGINT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (complaint_id, seq)
);
CREATE TRIGGER complaint_steps_no_update BEFORE UPDATE ON complaint_steps
BEGIN SELECT RAISE(ABORT, 'complaint_steps are append-only'); END;
CREATE TRIGGER complaint_steps_no_delete BEFORE DELETE ON complaint_steps
BEGIN SELECT RAISE(ABORT, 'complaint_steps are append-only'); END;
