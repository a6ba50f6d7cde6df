//! Payment, order, payout and complaint states, with their transitions written once as tables.
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

/// A payer's complaint about one of their payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintStatus {
    /// Waiting for the merchant's answer, until its deadline.
    Open,
    /// The merchant answered (explained, rejected, or refunded part):
    /// waiting for the payer to accept or escalate.
    Answered,
    /// Waiting for the operator's decision.
    Escalated,
    /// Refunded on the spot; the merchant may contest it within its window.
    RefundedInstantly,
    /// The merchant contested the instant refund: the operator decides who
    /// bears it (never the payer).
    Contested,
    /// Done; `resolution` says how.
    Resolved,
}

/// Every allowed complaint transition. Filing makes an `open` or a
/// `refunded_instantly` complaint; the operator may send an evasive answer
/// back to the merchant (`escalated → open`), or park one it holds (a
/// move to the same status, with a revisit time).
pub const COMPLAINT_TRANSITIONS: &[(ComplaintStatus, ComplaintStatus)] = &[
    (ComplaintStatus::Open, ComplaintStatus::Answered),
    (ComplaintStatus::Open, ComplaintStatus::Resolved),
    (ComplaintStatus::Open, ComplaintStatus::Escalated),
    (ComplaintStatus::Answered, ComplaintStatus::Resolved),
    (ComplaintStatus::Answered, ComplaintStatus::Escalated),
    (ComplaintStatus::Escalated, ComplaintStatus::Resolved),
    (ComplaintStatus::Escalated, ComplaintStatus::Open),
    // Parked by the operator until a revisit time.
    (ComplaintStatus::Escalated, ComplaintStatus::Escalated),
    (ComplaintStatus::Contested, ComplaintStatus::Contested),
    (
        ComplaintStatus::RefundedInstantly,
        ComplaintStatus::Contested,
    ),
    (
        ComplaintStatus::RefundedInstantly,
        ComplaintStatus::Resolved,
    ),
    (ComplaintStatus::Contested, ComplaintStatus::Resolved),
];

impl ComplaintStatus {
    pub const ALL: [ComplaintStatus; 6] = [
        ComplaintStatus::Open,
        ComplaintStatus::Answered,
        ComplaintStatus::Escalated,
        ComplaintStatus::RefundedInstantly,
        ComplaintStatus::Contested,
        ComplaintStatus::Resolved,
    ];

    /// Whose move it is: `None` once resolved.
    pub fn waiting_for(self) -> Option<&'static str> {
        match self {
            ComplaintStatus::Open => Some("merchant"),
            ComplaintStatus::Answered => Some("payer"),
            ComplaintStatus::Escalated | ComplaintStatus::Contested => Some("operator"),
            ComplaintStatus::RefundedInstantly => Some("merchant"),
            ComplaintStatus::Resolved => None,
        }
    }
}

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

status_strings!(ComplaintStatus, COMPLAINT_TRANSITIONS, "complaint", {
    Open => "open",
    Answered => "answered",
    Escalated => "escalated",
    RefundedInstantly => "refunded_instantly",
    Contested => "contested",
    Resolved => "resolved",
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
    fn complaints_follow_their_table() {
        use ComplaintStatus as C;
        let mut allowed = 0;
        for from in C::ALL {
            for to in C::ALL {
                let ok = from.transition(to).is_ok();
                assert_eq!(ok, COMPLAINT_TRANSITIONS.contains(&(from, to)));
                allowed += usize::from(ok);
            }
            assert_eq!(from.as_str().parse::<C>(), Ok(from));
            assert_eq!(from.is_final(), from.waiting_for().is_none(), "{from}");
        }
        assert_eq!(allowed, COMPLAINT_TRANSITIONS.len());
        assert!(C::Resolved.is_final());
        // An instant refund is never reopened for the merchant to answer,
        // and a resolved complaint never moves again.
        assert!(C::RefundedInstantly.transition(C::Open).is_err());
        assert!(C::Resolved.transition(C::Escalated).is_err());
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
