-- The step-up sweeper walks every waiting payment, oldest first, without
-- reading the others (ops::waiting_payments names this predicate).
CREATE INDEX payments_waiting ON payments (status, created_at, id)
    WHERE status IN ('requires_action', 'confirming');
