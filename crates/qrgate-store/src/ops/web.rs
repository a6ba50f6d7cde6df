//! Web sessions: read one with its key, end one.

use qrgate_core::Timestamp;

use crate::db::{Arg, Conn};
use crate::error::StoreError;

use super::*;

/// The session whose token hashes to `token_hash`, with its key's role,
/// subject and revocation as they are now (one read).
pub(crate) async fn web_session<C: Conn>(
    c: &mut C,
    token_hash: &str,
) -> Result<Option<SessionKey>, StoreError> {
    let rows = c
        .rows(
            "SELECT s.token_hash, s.key_id, s.csrf, s.created_at, s.expires_at, s.ended_at, \
             k.role, k.subject_id, k.revoked_at \
             FROM web_sessions s JOIN api_keys k ON k.id = s.key_id WHERE s.token_hash = $1",
            &[Arg::Str(token_hash)],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(SessionKey {
                session: WebSession {
                    token_hash: r.str("token_hash")?,
                    key_id: r.str("key_id")?,
                    csrf: r.str("csrf")?,
                    created_at: ts(r, "created_at")?,
                    expires_at: ts(r, "expires_at")?,
                    ended_at: opt_ts(r, "ended_at")?,
                },
                role: r.str("role")?,
                subject_id: r.opt_str("subject_id")?,
                key_revoked_at: opt_ts(r, "revoked_at")?,
            })
        })
        .transpose()
}

/// End a session (signed out); `false` when it had ended already.
pub(crate) async fn end_web_session<C: Conn>(
    c: &mut C,
    token_hash: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "UPDATE web_sessions SET ended_at = $1 WHERE token_hash = $2 AND ended_at IS NULL",
            &[Arg::I64(at.unix_millis()), Arg::Str(token_hash)],
        )
        .await?;
    Ok(n == 1)
}

/// Forget sessions that ended or expired before `before`; how many.
pub(crate) async fn purge_web_sessions<C: Conn>(
    c: &mut C,
    before: Timestamp,
) -> Result<u64, StoreError> {
    Ok(c.exec(
        "DELETE FROM web_sessions WHERE expires_at < $1 OR ended_at < $1",
        &[Arg::I64(before.unix_millis())],
    )
    .await?)
}
