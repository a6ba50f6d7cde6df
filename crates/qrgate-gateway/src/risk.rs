//! Risk checks beyond the caps. Each has a rule id and gives a decision
//! (allow, step-up, decline, flag for review) with a reason; the checks a
//! payment went through are recorded on it (`risk_checks`, shown to admins
//! and auditors) and flags also in its audit row. The checks here only
//! flag: they never refuse a payment, so they read outside the movement.

use qrgate_core::Timestamp;
use qrgate_store::{Merchant, Store};

use crate::{Error, Gateway, Kind};

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

/// What a sale's checks are decided on, read before the decision (which
/// then needs no I/O and is tested as a table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SaleFacts {
    /// Minor units.
    pub(crate) amount: i64,
    /// The merchant's single-payment cap (general or by category).
    pub(crate) txn_cap: Option<i64>,
    /// The payer's succeeded payments and their total over the history
    /// window; read only when the amount is above [`CheckRules::anomaly_floor`].
    pub(crate) history: Option<(i64, i64)>,
    /// Distinct payers of the merchant today; read only for a personal
    /// merchant.
    pub(crate) payers_today: Option<i64>,
}

/// The numbers of the checks, from the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckRules {
    pub(crate) velocity_per_minute: Option<i64>,
    /// Payments at or below this (level D's daily cap) are never judged
    /// anomalous.
    pub(crate) anomaly_floor: i64,
    pub(crate) anomaly_factor: i64,
    pub(crate) personal_code_payers: i64,
}

impl CheckRules {
    pub(crate) fn of(l: &crate::Limits) -> CheckRules {
        CheckRules {
            velocity_per_minute: l.velocity_per_minute,
            anomaly_floor: l.daily_d,
            anomaly_factor: l.anomaly_factor,
            personal_code_payers: l.personal_code_payers,
        }
    }
}

/// Decide a sale's checks (after the block list, which is read and
/// refused before): the single-payment cap refuses; the rest allow or flag
/// for review, each with its reason.
pub(crate) fn decide_sale(f: &SaleFacts, r: &CheckRules) -> Result<Vec<Check>, Error> {
    if let Some(cap) = f.txn_cap.filter(|c| f.amount > *c) {
        return Err(Error::new(
            Kind::Declined,
            "limit_exceeded",
            format!(
                "a single payment to this merchant is at most {}",
                crate::money(cap)
            ),
        )
        .with_rule("BCP-TXN-CAP"));
    }
    let mut checks = vec![Check::new(
        "QG-BLOCKLIST",
        Decision::Allow,
        "neither party is blocked",
    )];
    if let Some(cap) = f.txn_cap {
        checks.push(Check::new(
            "BCP-TXN-CAP",
            Decision::Allow,
            format!("within {} a payment", crate::money(cap)),
        ));
    }
    if let Some(n) = r.velocity_per_minute {
        checks.push(Check::new(
            "QG-VELOCITY-CUSTOMER",
            Decision::Allow,
            format!("at most {n} payments a minute"),
        ));
    }
    if let Some(history) = f.history.filter(|_| f.amount > r.anomaly_floor) {
        checks.push(anomaly(f.amount, history, r.anomaly_factor));
    }
    if let Some(payers) = f.payers_today {
        checks.push(personal_payers(payers, r.personal_code_payers));
    }
    Ok(checks)
}

/// QG-ANOMALY-AMOUNT: a large payment far above what this payer usually pays.
fn anomaly(amount: i64, (n, total): (i64, i64), factor: i64) -> Check {
    if n < MIN_HISTORY {
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
    }
}

/// QG-PERSONAL-CODE-PAYERS: a personal merchant paid by many people looks
/// like a business (259).
fn personal_payers(payers: i64, limit: i64) -> Check {
    if payers >= limit {
        Check::new(
            "QG-PERSONAL-CODE-PAYERS",
            Decision::FlagForReview,
            format!(
                "{payers} distinct payers today on a personal merchant (review at {limit}): business collection on a personal code?"
            ),
        )
    } else {
        Check::new(
            "QG-PERSONAL-CODE-PAYERS",
            Decision::Allow,
            format!("{payers} distinct payers today"),
        )
    }
}

impl<S: Store> Gateway<S> {
    /// What [`decide_sale`] needs, read from the store only where a check
    /// applies (the payer's history above the anomaly floor, the payers of
    /// a personal merchant).
    pub(crate) async fn sale_facts(
        &self,
        merchant: &Merchant,
        customer: &str,
        amount: i64,
        now: Timestamp,
    ) -> Result<SaleFacts, Error> {
        let txn_cap = self.txn_cap(merchant);
        if txn_cap.is_some_and(|c| amount > c) {
            // Refused by the cap whatever else is true: nothing to read.
            return Ok(SaleFacts {
                amount,
                txn_cap,
                history: None,
                payers_today: None,
            });
        }
        let history = if amount > self.limits.daily_d {
            let since = Timestamp::from_unix_millis(now.unix_millis() - HISTORY_DAYS * DAY_MS);
            Some(self.store.payer_history(customer, since).await?)
        } else {
            None
        };
        let payers_today = if merchant.category == "small_personal" {
            let since = day_start(now, self.limits.business_offset_minutes);
            Some(self.store.distinct_payers(&merchant.id, since).await?)
        } else {
            None
        };
        Ok(SaleFacts {
            amount,
            txn_cap,
            history,
            payers_today,
        })
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

    fn rules() -> CheckRules {
        CheckRules {
            velocity_per_minute: Some(10),
            anomaly_floor: 50_000,
            anomaly_factor: 10,
            personal_code_payers: 50,
        }
    }

    fn facts(amount: i64) -> SaleFacts {
        SaleFacts {
            amount,
            txn_cap: None,
            history: None,
            payers_today: None,
        }
    }

    /// (what, facts, the refusal's rule, or each check's rule and decision)
    #[test]
    fn the_sale_checks_table() {
        use Decision::{Allow, FlagForReview};
        type Want = Result<Vec<(&'static str, Decision)>, &'static str>;
        let base = vec![("QG-BLOCKLIST", Allow), ("QG-VELOCITY-CUSTOMER", Allow)];
        let with = |extra: Vec<(&'static str, Decision)>| {
            let mut v = base.clone();
            v.extend(extra);
            v
        };
        let rows: Vec<(&str, SaleFacts, Want)> = vec![
            ("small payment, nothing read", facts(100), Ok(base.clone())),
            (
                "over the single-payment cap",
                SaleFacts {
                    txn_cap: Some(5_000),
                    ..facts(5_001)
                },
                Err("BCP-TXN-CAP"),
            ),
            (
                "at the single-payment cap",
                SaleFacts {
                    txn_cap: Some(5_000),
                    ..facts(5_000)
                },
                Ok(vec![
                    ("QG-BLOCKLIST", Allow),
                    ("BCP-TXN-CAP", Allow),
                    ("QG-VELOCITY-CUSTOMER", Allow),
                ]),
            ),
            (
                "large, too little history",
                SaleFacts {
                    history: Some((2, 1_000)),
                    ..facts(60_000)
                },
                Ok(with(vec![("QG-ANOMALY-AMOUNT", Allow)])),
            ),
            (
                "large, ten times the average",
                SaleFacts {
                    history: Some((3, 18_000)),
                    ..facts(60_000)
                },
                Ok(with(vec![("QG-ANOMALY-AMOUNT", FlagForReview)])),
            ),
            (
                "large, just under ten times the average",
                SaleFacts {
                    history: Some((3, 18_001)),
                    ..facts(60_000)
                },
                Ok(with(vec![("QG-ANOMALY-AMOUNT", Allow)])),
            ),
            (
                "history given but the amount at the floor",
                SaleFacts {
                    history: Some((3, 3)),
                    ..facts(50_000)
                },
                Ok(base.clone()),
            ),
            (
                "personal merchant, few payers",
                SaleFacts {
                    payers_today: Some(49),
                    ..facts(100)
                },
                Ok(with(vec![("QG-PERSONAL-CODE-PAYERS", Allow)])),
            ),
            (
                "personal merchant, many payers",
                SaleFacts {
                    payers_today: Some(50),
                    ..facts(100)
                },
                Ok(with(vec![("QG-PERSONAL-CODE-PAYERS", FlagForReview)])),
            ),
        ];
        for (what, f, want) in rows {
            let got = decide_sale(&f, &rules())
                .map(|checks| {
                    checks
                        .iter()
                        .map(|c| (c.rule.clone(), c.decision))
                        .collect::<Vec<_>>()
                })
                .map_err(|e| e.rule.unwrap_or_default());
            let want = want
                .map(|v| {
                    v.into_iter()
                        .map(|(r, d)| (r.to_owned(), d))
                        .collect::<Vec<_>>()
                })
                .map_err(str::to_owned);
            assert_eq!(got, want, "{what}");
        }
    }
}
