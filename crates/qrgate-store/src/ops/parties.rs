//! Parties and their credentials: merchants, customers, devices,
//! certificates, cards, OTP, blocks, API keys, PINs.

use qrgate_core::Timestamp;

use crate::db::{Arg, Conn, Row};
use crate::error::StoreError;

use super::*;

pub(crate) async fn merchant<C: Conn>(c: &mut C, id: &str) -> Result<Option<Merchant>, StoreError> {
    let rows = c
        .rows("SELECT id, name, city, country, mcc, currency, category, name_local, owner_ref, created_at FROM merchants WHERE id = $1", &[Arg::Str(id)])
        .await?;
    rows.first()
        .map(|r| {
            Ok(Merchant {
                id: r.str(0)?,
                name: r.str(1)?,
                city: r.str(2)?,
                country: r.str(3)?,
                mcc: r.str(4)?,
                currency: parsed(&r.str(5)?, "currency")?,
                category: r.str(6)?,
                name_local: r.opt_str(7)?,
                owner_ref: r.opt_str(8)?,
                created_at: ts(r, 9)?,
            })
        })
        .transpose()
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
                id: r.str(0)?,
                account_class: r.str(1)?,
                level_a_cap: r.opt_i64(2)?,
                created_at: ts(r, 3)?,
            })
        })
        .transpose()
}

pub(super) fn device_from(r: &Row) -> Result<Device, StoreError> {
    Ok(Device {
        id: r.str(0)?,
        customer_id: r.str(1)?,
        kid: r.str(2)?,
        public_key: r.str(3)?,
        status: parsed(&r.str(4)?, "device status")?,
        created_at: ts(r, 5)?,
        enrolled_by: r.opt_str(6)?,
        biometric_at: opt_ts(r, 7)?,
    })
}

pub(crate) async fn device<C: Conn>(c: &mut C, id: &str) -> Result<Option<Device>, StoreError> {
    let rows = c
        .rows(concat!(device_select!(), "WHERE id = $1"), &[Arg::Str(id)])
        .await?;
    rows.first().map(device_from).transpose()
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
    rows.iter().map(device_from).collect()
}

pub(super) fn certificate_from(r: &Row) -> Result<Certificate, StoreError> {
    Ok(Certificate {
        id: r.str(0)?,
        customer_id: r.str(1)?,
        public_key: r.str(2)?,
        status: parsed(&r.str(3)?, "certificate status")?,
        created_at: ts(r, 4)?,
    })
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
    rows.iter().map(certificate_from).collect()
}

pub(super) fn card_from(r: &Row) -> Result<Card, StoreError> {
    Ok(Card {
        id: r.str(0)?,
        customer_id: r.str(1)?,
        processor: r.str(2)?,
        token: r.str(3)?,
        brand: r.str(4)?,
        last4: r.str(5)?,
        funding: r.str(6)?,
        exp_month: r.i64(7)?,
        exp_year: r.i64(8)?,
        created_at: ts(r, 9)?,
    })
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
    rows.iter().map(card_from).collect()
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
                id: r.str(0)?,
                customer_id: r.str(1)?,
                secret: r.str(2)?,
                created_at: ts(r, 3)?,
            })
        })
        .transpose()
}

pub(super) fn block_from(r: &Row) -> Result<Block, StoreError> {
    Ok(Block {
        id: r.str(0)?,
        subject_id: r.str(1)?,
        reason: r.str(2)?,
        created_at: ts(r, 3)?,
        lifted_at: opt_ts(r, 4)?,
    })
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
    rows.iter().map(block_from).collect()
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
    Ok(rows.iter().map(|r| r.str(0)).collect::<Result<_, _>>()?)
}

pub(crate) async fn block<C: Conn>(c: &mut C, id: &str) -> Result<Option<Block>, StoreError> {
    let rows = c
        .rows(
            "SELECT id, subject_id, reason, created_at, lifted_at FROM blocks WHERE id = $1",
            &[Arg::Str(id)],
        )
        .await?;
    rows.first().map(block_from).transpose()
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
                id: r.str(0)?,
                key_hash: r.str(1)?,
                role: r.str(2)?,
                subject_id: r.opt_str(3)?,
                created_at: ts(r, 4)?,
                revoked_at: opt_ts(r, 5)?,
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
                customer_id: r.str(0)?,
                pin_hash: r.str(1)?,
                pin_salt: r.str(2)?,
                failures: r.i64(3)?,
                locked_until: opt_ts(r, 4)?,
                updated_at: ts(r, 5)?,
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
        Some(r) => Ok(Some((r.i64(0)?, opt_ts(r, 1)?))),
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
