//! Risk checks beyond the caps. Each has a rule id and gives a decision
//! (allow, step-up, decline, flag for review) with a reason; the checks a
//! payment went through are recorded on it (`risk_checks`, shown to admins
//! and auditors) and flags also in its audit row. The checks here only
//! flag: they never refuse a payment, so they read outside the movement.

use qrgate_core::Timestamp;
use qrgate_store::{Merchant, Store};

use crate::{Error, Gateway};

/// Days of history the amount check compares against.
const HISTORY_DAYS: i64 = 30;
/// Payments of history the amount check needs before it judges.
const MIN_HISTORY: i64 = 3;
const DAY_MS: i64 = 86_400_000;

pub use qrgate_core::payment::{Check, Decision};

/// The start of the business day of `now`.
fn day_start(now: Timestamp, offset_minutes: i32) -> Timestamp {
    let offset_ms = i64::from(offset_minutes) * 60_000;
    let ms = now.unix_millis();
    Timestamp::from_unix_millis(ms - (ms + offset_ms).rem_euclid(DAY_MS))
}

impl<S: Store> Gateway<S> {
    /// The checks that may flag a payment for review.
    pub(crate) async fn review_checks(
        &self,
        merchant: &Merchant,
        customer: &str,
        amount: i64,
        now: Timestamp,
    ) -> Result<Vec<Check>, Error> {
        let mut checks = Vec::new();
        // QG-ANOMALY-AMOUNT: a large payment far above what this payer usually pays.
        let floor = self.limits.daily_d;
        if amount > floor {
            let since = Timestamp::from_unix_millis(now.unix_millis() - HISTORY_DAYS * DAY_MS);
            let (n, total) = self.store.payer_history(customer, since).await?;
            let factor = self.limits.anomaly_factor;
            let check = if n < MIN_HISTORY {
                Check::new(
                    "QG-ANOMALY-AMOUNT",
                    Decision::Allow,
                    format!("{n} payments in {HISTORY_DAYS} days: too little history to judge"),
                )
            } else if i128::from(amount) * i128::from(n) >= i128::from(factor) * i128::from(total) {
                Check::new(
                    "QG-ANOMALY-AMOUNT",
                    Decision::FlagForReview,
                    format!(
                        "{} is at least {factor} times the payer's average of {} over {n} payments in {HISTORY_DAYS} days",
                        crate::money(amount),
                        crate::money(total / n)
                    ),
                )
            } else {
                Check::new(
                    "QG-ANOMALY-AMOUNT",
                    Decision::Allow,
                    format!("within {factor} times the payer's {HISTORY_DAYS}-day average"),
                )
            };
            checks.push(check);
        }
        // QG-PERSONAL-CODE-PAYERS: a personal merchant paid by many people looks like a business (259).
        if merchant.category == "small_personal" {
            let since = day_start(now, self.limits.business_offset_minutes);
            let payers = self.store.distinct_payers(&merchant.id, since).await?;
            let limit = self.limits.personal_code_payers;
            checks.push(if payers >= limit {
                Check::new(
                    "QG-PERSONAL-CODE-PAYERS",
                    Decision::FlagForReview,
                    format!("{payers} distinct payers today on a personal merchant (review at {limit}): business collection on a personal code?"),
                )
            } else {
                Check::new(
                    "QG-PERSONAL-CODE-PAYERS",
                    Decision::Allow,
                    format!("{payers} distinct payers today"),
                )
            });
        }
        Ok(checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_day_starts_at_local_midnight() {
        // 2026-11-25 15:59:59 UTC is 23:59:59 in Shanghai; 16:00 is the next day.
        let t = Timestamp::parse_rfc3339("2026-11-25T15:59:59Z")
            .unwrap_or(Timestamp::from_unix_millis(0));
        assert_eq!(day_start(t, 480).to_rfc3339(), "2026-11-24T16:00:00Z");
        let t = Timestamp::parse_rfc3339("2026-11-25T16:00:00Z")
            .unwrap_or(Timestamp::from_unix_millis(0));
        assert_eq!(day_start(t, 480).to_rfc3339(), "2026-11-25T16:00:00Z");
    }
}
