//! The parties and what they own, one room each: merchants, customers and
//! their top-ups, API keys and authentication, the block list, certificates,
//! static codes and orders. Devices, and revoking credentials, are in
//! [`crate::credentials`]; its views are re-exported here.

mod api_keys;
mod blocks;
mod certificates;
mod customers;
mod merchants;
mod orders;
mod static_codes;

pub use crate::credentials::{DeviceHandlesView, DeviceView};
pub use api_keys::{ApiKeyCreated, key_hash};
pub use blocks::BlockView;
pub use certificates::CertificateView;
pub use customers::{CustomerView, NewCustomer, TopupView};
pub use merchants::NewMerchant;
pub use static_codes::{STATIC_CODE_PROMPT, StaticCodeList, StaticCodeView};

use qrgate_store::*;

use crate::trail::{self, Action, By};
use crate::{Error, Principal};

fn check_len(field: &'static str, v: &str, max: usize) -> Result<(), Error> {
    let n = v.chars().count();
    if n == 0 || n > max || v.trim() != v {
        return Err(Error::bad_request(
            "invalid_request",
            format!("{field} must be 1 to {max} characters without leading or trailing spaces"),
        ));
    }
    Ok(())
}

/// Parse a customer, merchant or device id of the right kind, or answer 404.
pub fn parse_id<K: qrgate_core::id::IdKind>(
    what: &str,
    s: &str,
) -> Result<qrgate_core::id::Id<K>, Error> {
    s.parse().map_err(|_| Error::not_found(what, s))
}

/// The audit row of an admin action: what, on what, by which key (none:
/// the first start, which creates the admin key itself).
fn admin_audit(
    by: Option<&Principal>,
    action: Action,
    subject: &str,
    details: serde_json::Value,
) -> AuditEntry {
    let by = by.map_or(By::Gateway("first-start"), By::Key);
    trail::entry(action, subject, by, details)
}

/// A new merchant's accounts: pending (may go negative: refunds of
/// settled payments come out of it and are carried forward), available
/// and in payout (never negative), and the gateway's fees from it.
fn merchant_accounts(id: &str, now: qrgate_core::Timestamp) -> [Account; 4] {
    let c = crate::CURRENCY;
    [
        Account {
            allow_negative: true,
            ..owned_account(
                qrgate_core::AccountId::settlement(id, c),
                "merchant_settlement",
                id,
                now,
            )
        },
        owned_account(
            qrgate_core::AccountId::available(id, c),
            "merchant_available",
            id,
            now,
        ),
        owned_account(
            qrgate_core::AccountId::in_payout(id, c),
            "merchant_payout",
            id,
            now,
        ),
        owned_account(qrgate_core::AccountId::fees(id, c), "fee_revenue", id, now),
    ]
}

/// A new account of a merchant or customer, empty, never negative.
fn owned_account(
    id: qrgate_core::AccountId,
    kind: &str,
    owner: &str,
    now: qrgate_core::Timestamp,
) -> Account {
    Account {
        id,
        kind: kind.into(),
        owner_id: Some(owner.into()),
        currency: crate::CURRENCY,
        allow_negative: false,
        balance_minor: 0,
        created_at: now,
        closed_until: None,
    }
}
