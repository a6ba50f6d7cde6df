//! The audit chain: appending (SQLite chains at once, PostgreSQL queues),
//! chaining the queue, reading and verifying the chain.

use crate::audit;
use crate::db::{Arg, Conn, Dialect};
use crate::error::{MovementError, StoreError};
use crate::steps;

use super::*;

/// Record an audit entry in the movement's transaction. SQLite (one writer)
/// chains it at once and answers its `seq`; PostgreSQL queues it for
/// [`chain_audit`] (`None`), so concurrent movements do not wait for each
/// other on the chain's head row.
pub(crate) async fn append_audit<C: Conn>(
    c: &mut C,
    a: &AuditEntry,
    details: &str,
    at: i64,
) -> Result<Option<i64>, MovementError> {
    if c.dialect() == Dialect::Postgres {
        let (sql, args) = steps::alone(|q| steps::audit_queue(q, a, details, at));
        c.exec(sql, &args).await?;
        return Ok(None);
    }
    let (seq, prev) = take_head(
        c,
        "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash",
    )
    .await?;
    let hash = link(c, seq, at, &a.action, &a.subject, details, &prev).await?;
    c.exec(
        "UPDATE audit_head SET hash = $1 WHERE id = 1",
        &[Arg::Str(&hash)],
    )
    .await?;
    Ok(Some(seq))
}

/// Lock the chain's head row with `sql` (an UPDATE … RETURNING seq, hash).
pub(super) async fn take_head<C: Conn>(
    c: &mut C,
    sql: &'static str,
) -> Result<(i64, String), MovementError> {
    let head = c.rows(sql, &[]).await?;
    let head = head
        .first()
        .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".into()))?;
    Ok((head.i64("seq")?, head.str("hash")?))
}

/// The hash of row `seq` chained after `prev`.
pub(super) fn chained(
    seq: i64,
    at: i64,
    action: &str,
    subject: &str,
    details: &str,
    prev: &str,
) -> Result<String, StoreError> {
    audit::chain_hash(prev, &audit::canonical(seq, at, action, subject, details))
        .ok_or_else(|| StoreError::Corrupt(format!("audit head hash {prev:?} is not hex")))
}

/// Append row `seq` after `prev` to the chain; its hash.
pub(super) async fn link<C: Conn>(
    c: &mut C,
    seq: i64,
    at: i64,
    action: &str,
    subject: &str,
    details: &str,
    prev: &str,
) -> Result<String, MovementError> {
    let hash = chained(seq, at, action, subject, details, prev)?;
    c.exec(
        "INSERT INTO audit_log (seq, at, action, subject, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[Arg::I64(seq), Arg::I64(at), Arg::Str(action), Arg::Str(subject), Arg::Str(details), Arg::Str(prev), Arg::Str(&hash)],
    )
    .await?;
    Ok(hash)
}

/// Most queued audit entries chained in one pass.
pub(crate) const CHAIN_BATCH: i64 = 1000;

/// PostgreSQL: move up to [`CHAIN_BATCH`] queued audit entries into the
/// chain, oldest first, in one transaction that holds the head row (so
/// passes of several gateways take turns, and each sees what the one before
/// it moved). The number chained. (SQLite's queue stays empty: it chains
/// inline.)
pub(crate) async fn chain_audit<C: Conn>(c: &mut C) -> Result<u64, MovementError> {
    if c.rows("SELECT 1 FROM audit_queue LIMIT 1", &[])
        .await?
        .is_empty()
    {
        return Ok(0);
    }
    // Lock the head first; READ COMMITTED then reads the queue afresh.
    let (mut seq, mut prev) = take_head(
        c,
        "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash",
    )
    .await?;
    let queued = c
        .rows(
            "SELECT id, at, action, subject, details FROM audit_queue ORDER BY id LIMIT $1",
            &[Arg::I64(CHAIN_BATCH)],
        )
        .await?;
    // The pass's rows go in with one INSERT and leave the queue with one
    // DELETE (by id, not by range: a lower id may commit after this read).
    let mut rows = Vec::with_capacity(queued.len());
    let mut ids = Vec::with_capacity(queued.len());
    for r in &queued {
        seq += 1;
        let (at, action, subject, details) = (
            r.i64("at")?,
            r.str("action")?,
            r.str("subject")?,
            r.str("details")?,
        );
        let hash = chained(seq, at, &action, &subject, &details, &prev)?;
        rows.push(serde_json::json!({
            "seq": seq, "at": at, "action": action, "subject": subject,
            "details": details, "prev_hash": prev, "hash": hash,
        }));
        ids.push(r.i64("id")?);
        prev = hash;
    }
    let rows = serde_json::Value::Array(rows).to_string();
    c.exec(
        "INSERT INTO audit_log (seq, at, action, subject, details, prev_hash, hash) \
         SELECT seq, at, action, subject, details, prev_hash, hash FROM json_to_recordset(CAST($1 AS JSON)) \
         AS x(seq BIGINT, at BIGINT, action TEXT, subject TEXT, details TEXT, prev_hash TEXT, hash TEXT)",
        &[Arg::Str(&rows)],
    )
    .await?;
    let deleted = c
        .exec(
            "DELETE FROM audit_queue WHERE id = ANY(CAST($1 AS BIGINT[]))",
            &[Arg::Str(&pg_array(&ids))],
        )
        .await?;
    if deleted != ids.len() as u64 {
        return Err(StoreError::Corrupt(format!(
            "audit queue: {deleted} of {} chained entries were still queued",
            ids.len()
        ))
        .into());
    }
    c.exec(
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
        &[Arg::I64(seq), Arg::Str(&prev)],
    )
    .await?;
    Ok(queued.len() as u64)
}

/// Audit rows with `seq > after`, in order, at most `limit`.
pub(crate) async fn audit_rows<C: Conn>(
    c: &mut C,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let rows = c
        .rows(
            "SELECT seq, at, action, subject, details, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[Arg::I64(after), Arg::I64(limit)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                seq: r.i64("seq")?,
                at: ts(r, "at")?,
                action: r.str("action")?,
                subject: r.str("subject")?,
                details: json(&r.str("details")?)?,
                prev_hash: r.str("prev_hash")?,
                hash: r.str("hash")?,
            })
        })
        .collect()
}

/// Walk the whole chain and name the first broken row.
pub(crate) async fn verify_audit<C: Conn>(c: &mut C) -> Result<AuditVerdict, StoreError> {
    let mut prev = audit::GENESIS.to_owned();
    let mut expected_seq = 1;
    loop {
        // Read the stored text of `details` exactly as hashed.
        let rows = c
            .rows(
                "SELECT seq, at, action, subject, details, prev_hash, hash FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT 1000",
                &[Arg::I64(expected_seq)],
            )
            .await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let seq = r.i64("seq")?;
            if seq != expected_seq {
                return Ok(AuditVerdict::Broken {
                    seq: expected_seq,
                    reason: format!("row {expected_seq} is missing (next is {seq})"),
                });
            }
            let stored_prev = r.str("prev_hash")?;
            if stored_prev != prev {
                return Ok(AuditVerdict::Broken {
                    seq,
                    reason: "previous-hash link does not match the row before".into(),
                });
            }
            let canonical = audit::canonical(
                seq,
                r.i64("at")?,
                &r.str("action")?,
                &r.str("subject")?,
                &r.str("details")?,
            );
            let want = audit::chain_hash(&prev, &canonical).unwrap_or_default();
            let hash = r.str("hash")?;
            if hash != want {
                return Ok(AuditVerdict::Broken {
                    seq,
                    reason: "hash does not match the row's content".into(),
                });
            }
            prev = hash;
            expected_seq += 1;
        }
    }
    let head = c
        .rows("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
        .await?;
    let head = head
        .first()
        .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".into()))?;
    if head.i64("seq")? != expected_seq - 1 || head.str("hash")? != prev {
        return Ok(AuditVerdict::Broken {
            seq: expected_seq,
            reason: format!(
                "the chain ends at row {} but the head says {}",
                expected_seq - 1,
                head.i64("seq")?
            ),
        });
    }
    Ok(AuditVerdict::Intact {
        rows: expected_seq - 1,
        head: prev,
    })
}
