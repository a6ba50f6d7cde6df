//! Keys of the counters caps are kept on: what is counted, for whom, over
//! which period. Each kind is made by one constructor here, so two places
//! that charge or read the same cap cannot spell its key two ways.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::RiskLevel;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CounterKey(String);

impl CounterKey {
    /// A risk level's daily total for `subject` (a customer's wallet
    /// payments together, or one card) on a business date.
    pub fn daily(subject: &str, level: RiskLevel, business_date: &str) -> CounterKey {
        CounterKey(format!(
            "daily:{subject}:{}:{business_date}",
            level.as_str()
        ))
    }

    /// A class-I account's total over its life.
    pub fn class_total(customer: &str) -> CounterKey {
        CounterKey(format!("class:{customer}:I:total"))
    }

    /// A class-II or -III account's total in a year.
    pub fn class_yearly(customer: &str, class: &str, year: &str) -> CounterKey {
        CounterKey(format!("class:{customer}:{class}:{year}"))
    }

    /// Payments without the PIN on a business day.
    pub fn password_free(customer: &str, business_date: &str) -> CounterKey {
        CounterKey(format!("pwfree:{customer}:{business_date}"))
    }

    /// Payments in one minute.
    pub fn velocity(customer: &str, unix_minute: i64) -> CounterKey {
        CounterKey(format!("velocity:{customer}:{unix_minute}"))
    }

    /// Credit-card receipts of a small merchant's owner in a period (a
    /// business date, or its month `YYYY-MM`).
    pub fn small_credit(owner: &str, period: &str) -> CounterKey {
        CounterKey(format!("small_credit:{owner}:{period}"))
    }

    /// What was refunded of a payment.
    pub fn refunded(payment_id: &str) -> CounterKey {
        CounterKey(format!("refund:{payment_id}"))
    }

    /// How many refunds a payment had.
    pub fn refund_count(payment_id: &str) -> CounterKey {
        CounterKey(format!("refund_count:{payment_id}"))
    }

    /// A payer's instant complaint refunds not yet 30 days old
    /// (QG-COMPLAINT-INSTANT-CAP): charged with each one, given back when
    /// it ages out of the window, so the counter is never below the
    /// window's true total.
    pub fn instant_refunds(customer: &str) -> CounterKey {
        CounterKey(format!("instant_refund:{customer}"))
    }

    /// A key as the database holds it.
    pub fn stored(key: String) -> CounterKey {
        CounterKey(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CounterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored spelling of every kind: rows written before this type
    /// existed must go on counting under the same keys.
    #[test]
    fn keys_keep_their_stored_spelling() {
        let cases = [
            (
                CounterKey::daily("cus_1", RiskLevel::C, "2026-12-06"),
                "daily:cus_1:C:2026-12-06",
            ),
            (CounterKey::class_total("cus_1"), "class:cus_1:I:total"),
            (
                CounterKey::class_yearly("cus_1", "II", "2026"),
                "class:cus_1:II:2026",
            ),
            (
                CounterKey::password_free("cus_1", "2026-12-06"),
                "pwfree:cus_1:2026-12-06",
            ),
            (
                CounterKey::velocity("cus_1", 29_000_000),
                "velocity:cus_1:29000000",
            ),
            (
                CounterKey::small_credit("own", "2026-12"),
                "small_credit:own:2026-12",
            ),
            (CounterKey::refunded("pay_1"), "refund:pay_1"),
            (CounterKey::refund_count("pay_1"), "refund_count:pay_1"),
        ];
        for (key, text) in cases {
            assert_eq!(key.as_str(), text);
        }
    }
}
