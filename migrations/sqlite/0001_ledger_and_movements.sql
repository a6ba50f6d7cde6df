-- qrgate schema 0001 (SQLite): ledger, counters, one-time codes, payments,
-- refunds, idempotency, outbox, audit log, gateway keys.
-- Same tables, columns, nullability and indexes as postgres/0001.
-- Amounts are integer minor units; times are Unix milliseconds.

CREATE TABLE accounts (
    id             TEXT    NOT NULL PRIMARY KEY,
    kind           TEXT    NOT NULL,
    owner_id       TEXT,
    currency       TEXT    NOT NULL,
    allow_negative BOOLEAN NOT NULL,
    balance_minor  BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL
);

CREATE TABLE postings (
    id         TEXT   NOT NULL PRIMARY KEY,
    kind       TEXT   NOT NULL,
    payment_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX postings_payment ON postings (payment_id);

CREATE TABLE ledger_entries (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    posting_id   TEXT    NOT NULL REFERENCES postings (id),
    account_id   TEXT    NOT NULL REFERENCES accounts (id),
    amount_minor BIGINT  NOT NULL,
    currency     TEXT    NOT NULL
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);
CREATE INDEX ledger_entries_posting ON ledger_entries (posting_id);

CREATE TABLE counters (
    counter_key  TEXT   NOT NULL PRIMARY KEY,
    amount_minor BIGINT NOT NULL,
    uses         BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE used_codes (
    code_key   TEXT   NOT NULL PRIMARY KEY,
    payment_id TEXT,
    used_at    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_codes_expires ON used_codes (expires_at);

CREATE TABLE payments (
    id             TEXT   NOT NULL PRIMARY KEY,
    merchant_id    TEXT   NOT NULL,
    customer_id    TEXT,
    status         TEXT   NOT NULL,
    amount_minor   BIGINT NOT NULL,
    currency       TEXT   NOT NULL,
    refunded_minor BIGINT NOT NULL,
    out_trade_no   TEXT,
    details        TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX payments_merchant ON payments (merchant_id, created_at);
CREATE INDEX payments_customer ON payments (customer_id, created_at);
CREATE UNIQUE INDEX payments_out_trade_no ON payments (merchant_id, out_trade_no);

CREATE TABLE refunds (
    id            TEXT   NOT NULL PRIMARY KEY,
    payment_id    TEXT   NOT NULL REFERENCES payments (id),
    amount_minor  BIGINT NOT NULL,
    currency      TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    out_refund_no TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX refunds_out_refund_no ON refunds (payment_id, out_refund_no);

CREATE TABLE idempotency (
    scope           TEXT    NOT NULL,
    idem_key        TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE outbox (
    seq          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    event_type   TEXT    NOT NULL,
    subject_id   TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX outbox_pending ON outbox (delivered_at, seq);

CREATE TABLE audit_log (
    seq       BIGINT NOT NULL PRIMARY KEY,
    at        BIGINT NOT NULL,
    action    TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    details   TEXT   NOT NULL,
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL
);

CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE gateway_keys (
    kid        TEXT   NOT NULL PRIMARY KEY,
    state      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    pkcs8      TEXT   NOT NULL
);
