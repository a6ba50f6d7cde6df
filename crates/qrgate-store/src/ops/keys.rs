//! Signing keys and secrets at rest: the keyring's changes, the sealed
//! rows and their re-sealing.

use qrgate_core::Timestamp;

use crate::db::{Arg, Conn};
use crate::error::{MovementError, StoreError};

use super::*;

pub(crate) async fn load_keys<C: Conn>(c: &mut C) -> Result<Vec<StoredKey>, StoreError> {
    let rows = c
        .rows(
            "SELECT kid, state, created_at, pkcs8 FROM gateway_keys ORDER BY created_at, kid",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredKey {
                kid: r.str("kid")?,
                state: r.str("state")?,
                created_at: ts(r, "created_at")?,
                pkcs8: r.str("pkcs8")?,
            })
        })
        .collect()
}

/// Every stored secret, as stored.
pub(crate) async fn secret_rows<C: Conn>(c: &mut C) -> Result<Vec<SecretRow>, StoreError> {
    let mut out = Vec::new();
    for (slot, sql) in [
        (
            SecretSlot::GatewayKey,
            "SELECT kid AS id, pkcs8 AS value FROM gateway_keys",
        ),
        (
            SecretSlot::WebhookSecret,
            "SELECT id, secret AS value FROM webhook_endpoints",
        ),
        (
            SecretSlot::WebhookPrevious,
            "SELECT id, previous_secret AS value FROM webhook_endpoints WHERE previous_secret IS NOT NULL",
        ),
        (
            SecretSlot::OtpSecret,
            "SELECT id, secret AS value FROM otp_enrollments",
        ),
        (
            SecretSlot::GatewaySecret,
            "SELECT name AS id, value FROM gateway_secrets",
        ),
    ] {
        for r in c.rows(sql, &[]).await? {
            out.push(SecretRow {
                slot,
                id: r.str("id")?,
                value: r.str("value")?,
            });
        }
    }
    Ok(out)
}

/// Replace one stored secret with `value` while it is still `row.value`
/// (a re-seal racing a rotation on another node changes nothing).
pub(crate) async fn replace_secret<C: Conn>(
    c: &mut C,
    row: &SecretRow,
    value: &str,
) -> Result<bool, StoreError> {
    let sql = match row.slot {
        SecretSlot::GatewayKey => {
            "UPDATE gateway_keys SET pkcs8 = $1 WHERE kid = $2 AND pkcs8 = $3"
        }
        SecretSlot::WebhookSecret => {
            "UPDATE webhook_endpoints SET secret = $1 WHERE id = $2 AND secret = $3"
        }
        SecretSlot::WebhookPrevious => {
            "UPDATE webhook_endpoints SET previous_secret = $1 WHERE id = $2 AND previous_secret = $3"
        }
        SecretSlot::OtpSecret => {
            "UPDATE otp_enrollments SET secret = $1 WHERE id = $2 AND secret = $3"
        }
        SecretSlot::GatewaySecret => {
            "UPDATE gateway_secrets SET value = $1 WHERE name = $2 AND value = $3"
        }
    };
    Ok(c.exec(
        sql,
        &[Arg::Str(value), Arg::Str(&row.id), Arg::Str(&row.value)],
    )
    .await?
        == 1)
}

/// A secret of the gateway by name, as stored.
pub(crate) async fn gateway_secret<C: Conn>(
    c: &mut C,
    name: &str,
) -> Result<Option<String>, StoreError> {
    let rows = c
        .rows(
            "SELECT value FROM gateway_secrets WHERE name = $1",
            &[Arg::Str(name)],
        )
        .await?;
    Ok(rows.first().map(|r| r.str("value")).transpose()?)
}

/// Add a secret of the gateway unless one of that name exists (of nodes
/// starting at once, one writes it; `false` for the others).
pub(crate) async fn add_gateway_secret<C: Conn>(
    c: &mut C,
    name: &str,
    value: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    Ok(c.exec(
        "INSERT INTO gateway_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[Arg::Str(name), Arg::Str(value), Arg::I64(at.unix_millis())],
    )
    .await?
        == 1)
}

/// Apply a [`KeyChange`]; `false` when there was nothing to do (another
/// node wrote the first key; the key to retire is not `verify_only`).
pub(crate) async fn change_keys<C: Conn>(
    c: &mut C,
    change: &KeyChange,
) -> Result<bool, MovementError> {
    match change {
        KeyChange::First(k) => Ok(c
            .exec(
                "INSERT INTO gateway_keys (kid, state, created_at, pkcs8) SELECT $1, 'active', $2, $3 \
                 WHERE NOT EXISTS (SELECT 1 FROM gateway_keys) ON CONFLICT DO NOTHING",
                &[Arg::Str(&k.kid), Arg::I64(k.created_at.unix_millis()), Arg::Str(&k.pkcs8)],
            )
            .await?
            == 1),
        KeyChange::Rotate(k) => {
            c.exec(
                "UPDATE gateway_keys SET state = 'verify_only' WHERE state = 'active'",
                &[],
            )
            .await?;
            let n = c
                .exec(
                    "INSERT INTO gateway_keys (kid, state, created_at, pkcs8) VALUES ($1, 'active', $2, $3) \
                     ON CONFLICT DO NOTHING",
                    &[Arg::Str(&k.kid), Arg::I64(k.created_at.unix_millis()), Arg::Str(&k.pkcs8)],
                )
                .await?;
            if n == 0 {
                // Another rotation made its key active meanwhile: this one
                // is rolled back whole.
                return Err(StoreError::AlreadyExists(
                    "an active signing key (another rotation won)".into(),
                )
                .into());
            }
            Ok(true)
        }
        KeyChange::Retire { kid } => Ok(c
            .exec(
                "UPDATE gateway_keys SET state = 'retired' WHERE kid = $1 AND state = 'verify_only'",
                &[Arg::Str(kid)],
            )
            .await?
            == 1),
    }
}

/// Whether any unrevoked key with this role exists (first-start detection).
pub(crate) async fn has_active_key<C: Conn>(c: &mut C, role: &str) -> Result<bool, StoreError> {
    let rows = c
        .rows(
            "SELECT id FROM api_keys WHERE role = $1 AND revoked_at IS NULL LIMIT 1",
            &[Arg::Str(role)],
        )
        .await?;
    Ok(!rows.is_empty())
}
