-- qrgate schema 0007: the block list. An admin blocks a merchant or a
-- customer (QG-BLOCKLIST); a block is lifted by setting lifted_at, never
-- deleted, so the history stays. Same in both dialects.
CREATE TABLE blocks (
    id         TEXT   NOT NULL PRIMARY KEY,
    subject_id TEXT   NOT NULL,
    reason     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    lifted_at  BIGINT
);
CREATE INDEX blocks_subject ON blocks (subject_id);
