//! Parties and their credentials: merchants, customers, devices,
//! certificates, cards, OTP, blocks, API keys, PINs.

use qrgate_core::Timestamp;

use crate::db::{Arg, Conn, Row};
use crate::error::StoreError;

use super::*;

pub(crate) async fn merchant<C: Conn>(c: &mut C, id: &str) -> Result<Option<Merchant>, StoreError> {
    let rows = c
        .rows("SELECT id, name, city, country, mcc, currency, category, name_local, owner_ref, fee_rate_bps, fee_min_minor, bank_account, created_at FROM merchants WHERE id = $1", &[Arg::Str(id)])
        .await?;
    rows.first()
        .map(|r| {
            Ok(Merchant {
                id: r.str("id")?,
                name: r.str("name")?,
                city: r.str("city")?,
                country: r.str("country")?,
                mcc: r.str("mcc")?,
                currency: parsed(&r.str("currency")?, "currency")?,
                category: r.str("category")?,
                name_local: r.opt_str("name_local")?,
                owner_ref: r.opt_str("owner_ref")?,
                fees: fee_schedule(r)?,
                bank_account: r.opt_str("bank_account")?,
                created_at: ts(r, "created_at")?,
            })
        })
        .transpose()
}

/// A merchant's stored fee schedule, as valid as a new one.
fn fee_schedule(r: &Row) -> Result<qrgate_core::fee::FeeSchedule, StoreError> {
    let rate = r.i64("fee_rate_bps")?;
    let bad = |why: String| {
        StoreError::Corrupt(format!(
            "merchant {:?}: {why}",
            r.str("id").unwrap_or_default()
        ))
    };
    let rate = u32::try_from(rate).map_err(|_| bad(format!("fee rate {rate}")))?;
    qrgate_core::fee::FeeSchedule::new(rate, r.i64("fee_min_minor")?)
        .map_err(|e| bad(e.to_string()))
}

pub(crate) async fn customer<C: Conn>(c: &mut C, id: &str) -> Result<Option<Customer>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, account_class, level_a_cap, created_at FROM customers WHERE id = $1",
            &[Arg::Str(id)],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(Customer {
                id: r.str("id")?,
                account_class: r.str("account_class")?,
                level_a_cap: r.opt_i64("level_a_cap")?,
                created_at: ts(r, "created_at")?,
            })
        })
        .transpose()
}

impl FromRow for Device {
    fn from_row(r: &Row) -> Result<Device, StoreError> {
        Ok(Device {
            id: r.str("id")?,
            customer_id: r.str("customer_id")?,
            kid: r.str("kid")?,
            public_key: r.str("public_key")?,
            status: parsed(&r.str("status")?, "device status")?,
            created_at: ts(r, "created_at")?,
            enrolled_by: r.opt_str("enrolled_by")?,
            biometric_at: opt_ts(r, "biometric_at")?,
        })
    }
}

pub(crate) async fn device<C: Conn>(c: &mut C, id: &str) -> Result<Option<Device>, StoreError> {
    let rows = c
        .rows(concat!(device_select!(), "WHERE id = $1"), &[Arg::Str(id)])
        .await?;
    rows.first().map(Device::from_row).transpose()
}

pub(crate) async fn devices_of<C: Conn>(
    c: &mut C,
    customer_id: &str,
) -> Result<Vec<Device>, StoreError> {
    let rows = c
        .rows(
            concat!(
                device_select!(),
                "WHERE customer_id = $1 ORDER BY created_at, id"
            ),
            &[Arg::Str(customer_id)],
        )
        .await?;
    rows.iter().map(Device::from_row).collect()
}

impl FromRow for Certificate {
    fn from_row(r: &Row) -> Result<Certificate, StoreError> {
        Ok(Certificate {
            id: r.str("id")?,
            customer_id: r.str("customer_id")?,
            public_key: r.str("public_key")?,
            status: parsed(&r.str("status")?, "certificate status")?,
            created_at: ts(r, "created_at")?,
        })
    }
}

pub(crate) async fn certificates_of<C: Conn>(
    c: &mut C,
    customer_id: &str,
) -> Result<Vec<Certificate>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, customer_id, public_key, status, created_at FROM certificates WHERE customer_id = $1 ORDER BY created_at, id",
            &[Arg::Str(customer_id)],
        )
        .await?;
    rows.iter().map(Certificate::from_row).collect()
}

impl FromRow for Card {
    fn from_row(r: &Row) -> Result<Card, StoreError> {
        Ok(Card {
            id: r.str("id")?,
            customer_id: r.str("customer_id")?,
            processor: r.str("processor")?,
            token: r.str("token")?,
            brand: r.str("brand")?,
            last4: r.str("last4")?,
            funding: r.str("funding")?,
            exp_month: r.i64("exp_month")?,
            exp_year: r.i64("exp_year")?,
            created_at: ts(r, "created_at")?,
        })
    }
}

pub(crate) async fn cards_of<C: Conn>(
    c: &mut C,
    customer_id: &str,
) -> Result<Vec<Card>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, customer_id, processor, token, brand, last4, funding, exp_month, exp_year, created_at \
             FROM cards WHERE customer_id = $1 ORDER BY created_at, id",
            &[Arg::Str(customer_id)],
        )
        .await?;
    rows.iter().map(Card::from_row).collect()
}

pub(crate) async fn otp_enrollment<C: Conn>(
    c: &mut C,
    customer_id: &str,
) -> Result<Option<OtpEnrollment>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, customer_id, secret, created_at FROM otp_enrollments WHERE customer_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
            &[Arg::Str(customer_id)],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(OtpEnrollment {
                id: r.str("id")?,
                customer_id: r.str("customer_id")?,
                secret: r.str("secret")?,
                created_at: ts(r, "created_at")?,
            })
        })
        .transpose()
}

impl FromRow for Block {
    fn from_row(r: &Row) -> Result<Block, StoreError> {
        Ok(Block {
            id: r.str("id")?,
            subject_id: r.str("subject_id")?,
            reason: r.str("reason")?,
            created_at: ts(r, "created_at")?,
            lifted_at: opt_ts(r, "lifted_at")?,
        })
    }
}

/// Blocks in force on either of two parties (a payment's merchant and payer).
pub(crate) async fn active_blocks<C: Conn>(
    c: &mut C,
    a: &str,
    b: &str,
) -> Result<Vec<Block>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, subject_id, reason, created_at, lifted_at FROM blocks \
             WHERE subject_id IN ($1, $2) AND lifted_at IS NULL ORDER BY created_at, id",
            &[Arg::Str(a), Arg::Str(b)],
        )
        .await?;
    rows.iter().map(Block::from_row).collect()
}

/// The parties with a block in force, at most `limit` of them.
pub(crate) async fn blocked_subjects<C: Conn>(
    c: &mut C,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = c
        .rows(
            "SELECT DISTINCT subject_id FROM blocks WHERE lifted_at IS NULL ORDER BY subject_id LIMIT $1",
            &[Arg::I64(limit)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.str("subject_id"))
        .collect::<Result<_, _>>()?)
}

pub(crate) async fn block<C: Conn>(c: &mut C, id: &str) -> Result<Option<Block>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, subject_id, reason, created_at, lifted_at FROM blocks WHERE id = $1",
            &[Arg::Str(id)],
        )
        .await?;
    rows.first().map(Block::from_row).transpose()
}

/// Lift a block in force; false when there is none by that id.
pub(crate) async fn lift_block<C: Conn>(
    c: &mut C,
    id: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let n = c
        .exec(
            "UPDATE blocks SET lifted_at = $1 WHERE id = $2 AND lifted_at IS NULL",
            &[Arg::I64(at.unix_millis()), Arg::Str(id)],
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn api_key_by_hash<C: Conn>(
    c: &mut C,
    hash: &str,
) -> Result<Option<ApiKey>, StoreError> {
    let rows = c
        .rows("SELECT id, key_hash, role, subject_id, created_at, revoked_at FROM api_keys WHERE key_hash = $1", &[Arg::Str(hash)])
        .await?;
    rows.first()
        .map(|r| {
            Ok(ApiKey {
                id: r.str("id")?,
                key_hash: r.str("key_hash")?,
                role: r.str("role")?,
                subject_id: r.opt_str("subject_id")?,
                created_at: ts(r, "created_at")?,
                revoked_at: opt_ts(r, "revoked_at")?,
            })
        })
        .transpose()
}

pub(crate) async fn revoke_api_key<C: Conn>(
    c: &mut C,
    id: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let revoked = c
        .exec(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            &[Arg::I64(at.unix_millis()), Arg::Str(id)],
        )
        .await?
        == 1;
    if revoked {
        // A device enrolled with a stolen key is the thief's device.
        c.exec(
            "UPDATE devices SET status = 'revoked' WHERE enrolled_by = $1 AND status = 'active'",
            &[Arg::Str(id)],
        )
        .await?;
    }
    Ok(revoked)
}

/// Apply a [`CredentialChange`]; `false` when there was nothing to change.
pub(crate) async fn change_credential<C: Conn>(
    c: &mut C,
    change: &CredentialChange,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let at = at.unix_millis();
    let n = match change {
        CredentialChange::PinSet {
            customer_id,
            hash,
            salt,
        } => {
            c.exec(
                "INSERT INTO customer_credentials (customer_id, pin_hash, pin_salt, failures, locked_until, updated_at) \
                 VALUES ($1, $2, $3, 0, NULL, $4) ON CONFLICT (customer_id) DO UPDATE SET pin_hash = excluded.pin_hash, \
                 pin_salt = excluded.pin_salt, updated_at = excluded.updated_at \
                 WHERE customer_credentials.pin_hash = ''",
                &[Arg::Str(customer_id), Arg::Str(hash), Arg::Str(salt), Arg::I64(at)],
            )
            .await?
        }
        CredentialChange::PinReplace {
            customer_id,
            expected,
            hash,
            salt,
        } => {
            c.exec(
                "UPDATE customer_credentials SET pin_hash = $1, pin_salt = $2, updated_at = $3 \
                 WHERE customer_id = $4 AND pin_hash = $5 AND pin_hash <> ''",
                &[Arg::Str(hash), Arg::Str(salt), Arg::I64(at), Arg::Str(customer_id), Arg::Str(expected)],
            )
            .await?
        }
        CredentialChange::PinReset { customer_id } => {
            c.exec(
                "UPDATE customer_credentials SET pin_hash = '', pin_salt = '', updated_at = $1 \
                 WHERE customer_id = $2 AND pin_hash <> ''",
                &[Arg::I64(at), Arg::Str(customer_id)],
            )
            .await?
        }
        CredentialChange::DeviceRevoke { id, customer_id } => {
            c.exec(
                "UPDATE devices SET status = 'revoked' WHERE id = $1 AND status = 'active' \
                 AND ($2 IS NULL OR customer_id = $2)",
                &[Arg::Str(id), Arg::OptStr(customer_id.as_deref())],
            )
            .await?
        }
        CredentialChange::DeviceBiometric { id, customer_id } => {
            c.exec(
                "UPDATE devices SET biometric_at = $1 WHERE id = $2 AND customer_id = $3 \
                 AND status = 'active' AND biometric_at IS NULL",
                &[Arg::I64(at), Arg::Str(id), Arg::Str(customer_id)],
            )
            .await?
        }
        CredentialChange::CertificateRevoke { id, customer_id } => {
            c.exec(
                "UPDATE certificates SET status = 'revoked' WHERE id = $1 AND status = 'active' \
                 AND ($2 IS NULL OR customer_id = $2)",
                &[Arg::Str(id), Arg::OptStr(customer_id.as_deref())],
            )
            .await?
        }
        CredentialChange::StaticCodeRevoke { id, merchant_id } => {
            c.exec(
                "UPDATE static_codes SET revoked_at = $1 WHERE id = $2 AND merchant_id = $3 AND revoked_at IS NULL",
                &[Arg::I64(at), Arg::Str(id), Arg::Str(merchant_id)],
            )
            .await?
        }
        CredentialChange::StaticCodeSuspension {
            id,
            suspended_at,
            confirmed: false,
        } => {
            c.exec(
                "UPDATE static_codes SET suspended_at = NULL, reports_cleared_at = $1 \
                 WHERE id = $2 AND suspended_at = $3 AND revoked_at IS NULL",
                &[Arg::I64(at), Arg::Str(id), Arg::I64(suspended_at.unix_millis())],
            )
            .await?
        }
        CredentialChange::StaticCodeSuspension {
            id,
            suspended_at,
            confirmed: true,
        } => {
            c.exec(
                "UPDATE static_codes SET revoked_at = $1 \
                 WHERE id = $2 AND suspended_at = $3 AND revoked_at IS NULL",
                &[Arg::I64(at), Arg::Str(id), Arg::I64(suspended_at.unix_millis())],
            )
            .await?
        }
    };
    Ok(n == 1)
}

pub(crate) async fn credentials<C: Conn>(
    c: &mut C,
    customer_id: &str,
) -> Result<Option<Credentials>, StoreError> {
    let rows = c
        .rows(
            "SELECT customer_id, pin_hash, pin_salt, failures, locked_until, updated_at FROM customer_credentials WHERE customer_id = $1",
            &[Arg::Str(customer_id)],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(Credentials {
                customer_id: r.str("customer_id")?,
                pin_hash: r.str("pin_hash")?,
                pin_salt: r.str("pin_salt")?,
                failures: r.i64("failures")?,
                locked_until: opt_ts(r, "locked_until")?,
                updated_at: ts(r, "updated_at")?,
            })
        })
        .transpose()
}

/// Take one PIN (or one-time password) attempt, atomically, before the
/// secret is checked: it counts as a failure until the caller proves it
/// right ([`pin_succeeded`]). `None` while a lock is in force, so however
/// many attempts race, at most `lock_after` are ever evaluated. The attempt
/// that reaches `lock_after` locks until `locked_until`; the first attempt
/// after a lock has run out starts the count again. Returns the failures
/// counted so far (this attempt included) and the lock it set, if any.
pub(crate) async fn pin_attempt<C: Conn>(
    c: &mut C,
    customer_id: &str,
    at: Timestamp,
    lock_after: i64,
    locked_until: Timestamp,
) -> Result<Option<(i64, Option<Timestamp>)>, StoreError> {
    let rows = c
        .rows(
            "UPDATE customer_credentials SET \
               failures = CASE WHEN locked_until IS NULL THEN failures + 1 ELSE 1 END, \
               locked_until = CASE WHEN (CASE WHEN locked_until IS NULL THEN failures + 1 ELSE 1 END) >= $2 \
                 THEN $3 ELSE NULL END, \
               updated_at = $1 \
             WHERE customer_id = $4 AND (locked_until IS NULL OR locked_until <= $1) \
             RETURNING failures, locked_until",
            &[
                Arg::I64(at.unix_millis()),
                Arg::I64(lock_after),
                Arg::I64(locked_until.unix_millis()),
                Arg::Str(customer_id),
            ],
        )
        .await?;
    match rows.first() {
        Some(r) => Ok(Some((r.i64("failures")?, opt_ts(r, "locked_until")?))),
        None => Ok(None),
    }
}

pub(crate) async fn pin_refund<C: Conn>(
    c: &mut C,
    customer_id: &str,
    at: Timestamp,
    lift_lock: bool,
) -> Result<(), StoreError> {
    c.exec(
        "UPDATE customer_credentials SET failures = failures - 1, \
           locked_until = CASE WHEN $1 THEN NULL ELSE locked_until END, updated_at = $2 \
         WHERE customer_id = $3 AND failures > 0",
        &[
            Arg::Bool(lift_lock),
            Arg::I64(at.unix_millis()),
            Arg::Str(customer_id),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn pin_succeeded<C: Conn>(
    c: &mut C,
    customer_id: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    c.exec(
        "UPDATE customer_credentials SET failures = 0, locked_until = NULL, updated_at = $1 WHERE customer_id = $2",
        &[Arg::I64(at.unix_millis()), Arg::Str(customer_id)],
    )
    .await?;
    Ok(())
}
