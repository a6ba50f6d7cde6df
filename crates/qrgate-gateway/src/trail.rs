//! The audit rows the gateway writes, built in one place. Every action an
//! auditor can find in the chain is a variant of [`Action`], so the list of
//! what is audited is read here and not by grepping for strings, and every
//! row says who did it ([`By`]): an API key, or the gateway itself (the
//! first start, a sweeper, a rule that refunds on its own).

use serde_json::{Value, json};

use qrgate_store::AuditEntry;

use crate::Principal;

macro_rules! actions {
    ($($variant:ident = $name:literal,)*) => {
        /// What an audit row records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action { $($variant,)* }

        impl Action {
            /// Every action, in the order they are listed here.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The name stored in the chain (`resource.event`).
            pub fn as_str(self) -> &'static str {
                match self { $(Action::$variant => $name,)* }
            }
        }
    };
}

actions! {
    SigningKeyCreated = "signing_key.created",
    SigningKeyRotated = "signing_key.rotated",
    SigningKeyRetired = "signing_key.retired",
    MerchantCreated = "merchant.created",
    CustomerCreated = "customer.created",
    ApiKeyCreated = "api_key.created",
    ApiKeyRevoked = "api_key.revoked",
    WebSignedIn = "web_session.signed_in",
    WebSignedOut = "web_session.signed_out",
    BlockCreated = "block.created",
    BlockLifted = "block.lifted",
    CertificateEnrolled = "certificate.enrolled",
    CertificateRevoked = "certificate.revoked",
    DeviceEnrolled = "device.enrolled",
    DeviceRevoked = "device.revoked",
    DeviceBiometricEnabled = "device.biometric_enabled",
    StaticCodeRevoked = "static_code.revoked",
    StaticCodeSuspended = "static_code.suspended",
    StaticCodeReinstated = "static_code.reinstated",
    CardLinked = "card.linked",
    OtpEnrolled = "otp.enrolled",
    PinSet = "pin.set",
    PinChanged = "pin.changed",
    PinReset = "pin.reset",
    PinRehashed = "pin.rehashed",
    WalletTopup = "wallet.topup",
    OrderClosed = "order.closed",
    OrderExpired = "order.expired",
    PaymentRequiresAction = "payment.requires_action",
    PaymentConfirmed = "payment.confirmed",
    PaymentSucceeded = "payment.succeeded",
    PaymentFailed = "payment.failed",
    PaymentCanceled = "payment.canceled",
    RefundSucceeded = "refund.succeeded",
    ComplaintFiled = "complaint.filed",
    ComplaintAnswered = "complaint.answered",
    ComplaintEscalated = "complaint.escalated",
    ComplaintContested = "complaint.contested",
    ComplaintDecided = "complaint.decided",
    ComplaintResolved = "complaint.resolved",
    ReviewDecided = "review.decided",
    SettlementClosed = "settlement.closed",
    PayoutCreated = "payout.created",
    PayoutPaid = "payout.paid",
    PayoutFailed = "payout.failed",
    PayoutReturned = "payout.returned",
    WebhookEndpointCreated = "webhook_endpoint.created",
    WebhookEndpointDisabled = "webhook_endpoint.disabled",
    WebhookEndpointEnabled = "webhook_endpoint.enabled",
    WebhookEndpointDeleted = "webhook_endpoint.deleted",
    WebhookEndpointSecretRotated = "webhook_endpoint.secret_rotated",
}

/// Who did an audited thing.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    /// A caller, by its API key.
    Key(&'a Principal),
    /// The gateway on its own, and why (`first-start`, `sweeper`, a rule).
    Gateway(&'static str),
    /// Named by the caller: an admin's key id passed down, or `cli` for the
    /// operator at the command line.
    Named(&'a str),
}

impl<'a> From<&'a Principal> for By<'a> {
    fn from(p: &'a Principal) -> By<'a> {
        By::Key(p)
    }
}

impl By<'_> {
    /// What the row's `by` says: the key id, or the gateway's reason.
    pub fn name(&self) -> &str {
        match self {
            By::Key(p) => &p.key_id,
            By::Gateway(why) => why,
            By::Named(name) => name,
        }
    }
}

/// The audit row of `action` on `subject`: `details` (an object) with `by`
/// added.
pub(crate) fn entry(
    action: Action,
    subject: impl Into<String>,
    by: By<'_>,
    details: Value,
) -> AuditEntry {
    let mut details = match details {
        Value::Object(map) => Value::Object(map),
        Value::Null => json!({}),
        other => json!({ "value": other }),
    };
    details["by"] = json!(by.name());
    AuditEntry {
        action: action.as_str().into(),
        subject: subject.into(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    #[test]
    fn action_names_are_unique_and_resource_dot_event() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::ALL {
            let name = a.as_str();
            assert!(seen.insert(name), "{name} listed twice");
            let (resource, event) = name.split_once('.').unwrap_or(("", ""));
            assert!(
                !resource.is_empty() && !event.is_empty() && !event.contains('.'),
                "{name} is not resource.event"
            );
        }
    }

    #[test]
    fn every_row_says_who() {
        let p = Principal {
            key_id: "key_1".into(),
            role: Role::Merchant,
            subject: None,
        };
        let row = entry(
            Action::RefundSucceeded,
            "ref_1",
            By::from(&p),
            json!({ "a": 1 }),
        );
        assert_eq!(row.action, "refund.succeeded");
        assert_eq!(row.details, json!({ "a": 1, "by": "key_1" }));
        let row = entry(
            Action::OrderExpired,
            "ord_1",
            By::Gateway("sweeper"),
            Value::Null,
        );
        assert_eq!(row.details, json!({ "by": "sweeper" }));
    }
}
