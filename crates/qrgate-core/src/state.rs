//! Payment and order states, with their transitions written once as tables.
//! Every state change the gateway makes is checked against these; anything
//! not in a table is refused.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Waiting for the payer's step-up verification.
    RequiresAction,
    /// A confirmation has claimed it and is asking the card processor;
    /// no other confirmation may (it would authorize the card again).
    Confirming,
    /// Money moved. Refunds do not change the status (see `amount_refunded`).
    Succeeded,
    /// Declined; the one-time code is burned, no money moved.
    Failed,
    /// Abandoned before completion, or reversed in full within the cancel window.
    Canceled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    Paid,
    Expired,
    Closed,
}

/// A credential that can be used until it is revoked: an enrolled device
/// key or a customer's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    Active,
    /// For good: a revoked key signs nothing the gateway accepts again.
    Revoked,
}

/// A webhook delivery of one event to one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up on (too long without a 2xx, or its endpoint was deleted).
    Failed,
}

/// A payout of a merchant's available money to its bank account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// The money left available and is on its way; the bank is asked
    /// (again, after a failure that may pass) until it answers for good.
    Pending,
    /// The bank paid it.
    Paid,
    /// The bank refused it for good: the money is available again.
    Failed,
    /// The bank paid it, then sent it back (a closed account): the money
    /// is available again.
    Returned,
}

/// Every allowed payout transition. A retried attempt stays pending.
pub const PAYOUT_TRANSITIONS: &[(PayoutStatus, PayoutStatus)] = &[
    (PayoutStatus::Pending, PayoutStatus::Pending),
    (PayoutStatus::Pending, PayoutStatus::Paid),
    (PayoutStatus::Pending, PayoutStatus::Failed),
    (PayoutStatus::Paid, PayoutStatus::Returned),
];

/// Every allowed payment transition.
pub const PAYMENT_TRANSITIONS: &[(PaymentStatus, PaymentStatus)] = &[
    (PaymentStatus::RequiresAction, PaymentStatus::Succeeded),
    (PaymentStatus::RequiresAction, PaymentStatus::Failed),
    (PaymentStatus::RequiresAction, PaymentStatus::Canceled),
    // A card-funded confirmation claims the payment before the processor is
    // asked; it then completes, fails, or gives the claim back (no answer
    // that could be kept); a claim left past the deadline is canceled.
    (PaymentStatus::RequiresAction, PaymentStatus::Confirming),
    (PaymentStatus::Confirming, PaymentStatus::Succeeded),
    (PaymentStatus::Confirming, PaymentStatus::Failed),
    (PaymentStatus::Confirming, PaymentStatus::RequiresAction),
    (PaymentStatus::Confirming, PaymentStatus::Canceled),
    // A full reversal (cancel) within the cancel window.
    (PaymentStatus::Succeeded, PaymentStatus::Canceled),
];

/// Every allowed order transition.
pub const ORDER_TRANSITIONS: &[(OrderStatus, OrderStatus)] = &[
    (OrderStatus::Open, OrderStatus::Paid),
    (OrderStatus::Open, OrderStatus::Expired),
    (OrderStatus::Open, OrderStatus::Closed),
];

/// Every allowed credential transition.
pub const CREDENTIAL_TRANSITIONS: &[(CredentialStatus, CredentialStatus)] =
    &[(CredentialStatus::Active, CredentialStatus::Revoked)];

/// Every allowed delivery transition. An attempt that fails short of the
/// give-up time leaves a delivery pending; a redelivery on request sends
/// any delivery again, whatever became of it.
pub const DELIVERY_TRANSITIONS: &[(DeliveryStatus, DeliveryStatus)] = &[
    (DeliveryStatus::Pending, DeliveryStatus::Pending),
    (DeliveryStatus::Pending, DeliveryStatus::Delivered),
    (DeliveryStatus::Pending, DeliveryStatus::Failed),
    (DeliveryStatus::Delivered, DeliveryStatus::Pending),
    (DeliveryStatus::Failed, DeliveryStatus::Pending),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} cannot go from {from} to {to}")]
pub struct InvalidTransition {
    pub what: &'static str,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

macro_rules! status_strings {
    ($ty:ty, $table:ident, $what:literal, { $($v:ident => $s:literal),* $(,)? }) => {
        impl $ty {
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }

            /// `to` if the table allows `self → to`.
            pub fn transition(self, to: $ty) -> Result<$ty, InvalidTransition> {
                if $table.contains(&(self, to)) {
                    Ok(to)
                } else {
                    Err(InvalidTransition { what: $what, from: self.as_str().into(), to: to.as_str().into() })
                }
            }

            /// A state no transition leaves.
            pub fn is_final(self) -> bool {
                !$table.iter().any(|(from, _)| *from == self)
            }
        }

        impl FromStr for $ty {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s { $($s => Ok(Self::$v),)* _ => Err(UnknownStatus(s.into())) }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_strings!(PaymentStatus, PAYMENT_TRANSITIONS, "payment", {
    RequiresAction => "requires_action",
    Confirming => "confirming",
    Succeeded => "succeeded",
    Failed => "failed",
    Canceled => "canceled",
});

status_strings!(CredentialStatus, CREDENTIAL_TRANSITIONS, "credential", {
    Active => "active",
    Revoked => "revoked",
});

status_strings!(DeliveryStatus, DELIVERY_TRANSITIONS, "delivery", {
    Pending => "pending",
    Delivered => "delivered",
    Failed => "failed",
});

status_strings!(PayoutStatus, PAYOUT_TRANSITIONS, "payout", {
    Pending => "pending",
    Paid => "paid",
    Failed => "failed",
    Returned => "returned",
});

status_strings!(OrderStatus, ORDER_TRANSITIONS, "order", {
    Open => "open",
    Paid => "paid",
    Expired => "expired",
    Closed => "closed",
});

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;

    const ALL: [PaymentStatus; 5] = [RequiresAction, Confirming, Succeeded, Failed, Canceled];

    #[test]
    fn only_table_transitions_are_allowed() {
        let mut allowed = 0;
        for from in ALL {
            for to in ALL {
                let ok = from.transition(to).is_ok();
                assert_eq!(
                    ok,
                    PAYMENT_TRANSITIONS.contains(&(from, to)),
                    "{from} -> {to}"
                );
                allowed += usize::from(ok);
            }
        }
        assert_eq!(allowed, PAYMENT_TRANSITIONS.len());
        assert!(Failed.is_final() && Canceled.is_final());
        assert!(!Succeeded.is_final() && !RequiresAction.is_final());
        assert_eq!(
            Succeeded.transition(Succeeded).unwrap_err().to_string(),
            "payment cannot go from succeeded to succeeded"
        );
        assert!(OrderStatus::Paid.transition(OrderStatus::Open).is_err());
        assert!(
            PayoutStatus::Paid
                .transition(PayoutStatus::Returned)
                .is_ok()
        );
        assert!(PayoutStatus::Failed.is_final() && PayoutStatus::Returned.is_final());
        assert!(
            PayoutStatus::Paid
                .transition(PayoutStatus::Pending)
                .is_err()
        );
        assert!(OrderStatus::Open.transition(OrderStatus::Closed).is_ok());
    }

    #[test]
    fn strings_round_trip() {
        for s in ALL {
            assert_eq!(s.as_str().parse::<PaymentStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert!("paid".parse::<PaymentStatus>().is_err());
    }

    #[test]
    fn credentials_and_deliveries_follow_their_tables() {
        use CredentialStatus::{Active, Revoked};
        assert!(Active.transition(Revoked).is_ok());
        assert!(Revoked.transition(Active).is_err() && Revoked.is_final());
        assert!(Revoked.transition(Revoked).is_err());
        for c in [Active, Revoked] {
            assert_eq!(c.as_str().parse::<CredentialStatus>(), Ok(c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(c.as_str())
            );
        }
        use DeliveryStatus::{Delivered, Pending};
        assert!(Pending.transition(Delivered).is_ok());
        assert!(Delivered.transition(DeliveryStatus::Failed).is_err());
        assert!(DeliveryStatus::Failed.transition(Pending).is_ok());
        for d in [Pending, Delivered, DeliveryStatus::Failed] {
            assert_eq!(d.as_str().parse::<DeliveryStatus>(), Ok(d));
        }
    }
}
