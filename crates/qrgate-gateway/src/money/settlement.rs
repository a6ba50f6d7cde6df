//! The daily settlement: each business day (the day of the limits,
//! Asia/Shanghai by default) closes per merchant once it is over. The
//! day's receipts − refunds − fees, with what pending carried in, is the
//! closing balance; when positive it moves from pending to available, and
//! when negative it stays in pending (carried forward, never paid out:
//! QG-SETTLEMENT-NEGATIVE).
//! Settling a day twice changes nothing; days are settled in order.

use serde::{Deserialize, Serialize};
use serde_json::json;

use qrgate_core::day::BusinessDay;
use qrgate_store::*;

use super::MerchantAccounts;
use crate::trail::{self, Action, By};
use crate::views::amount;
use crate::{Error, Gateway, Kind, Principal, Role};

/// A settled business day of a merchant, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"object": "settlement", "merchant_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "date": "2026-11-25", "currency": "CNY", "payments": {"count": 3, "amount": "150.00"}, "refunds": {"count": 1, "amount": "20.00"}, "fees": "0.78", "net": "129.22", "carried_in": "0.00", "settled": "129.22", "carried_out": "0.00", "starts_at": "2026-11-24T16:00:00Z", "ends_at": "2026-11-25T16:00:00Z", "created_at": "2026-11-25T16:10:00.000Z"}))]
pub struct SettlementView {
    pub object: String,
    pub merchant_id: String,
    /// The business day, `YYYY-MM-DD`.
    pub date: String,
    pub currency: String,
    pub payments: CountAmount,
    /// Refunds and cancels.
    pub refunds: CountAmount,
    /// Fees of the day's payments less the fees its refunds gave back.
    pub fees: String,
    /// payments − refunds − fees.
    pub net: String,
    /// What the pending balance held at the start of the day that no
    /// earlier settlement moved (a negative day carried forward).
    pub carried_in: String,
    /// Moved from pending to available.
    pub settled: String,
    /// Left in pending: zero, or a negative balance carried forward.
    pub carried_out: String,
    pub starts_at: String,
    pub ends_at: String,
    pub created_at: String,
}

/// How many, and how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CountAmount {
    pub count: i64,
    pub amount: String,
}

impl SettlementView {
    pub fn of(s: &Settlement) -> SettlementView {
        let a = |minor| amount(minor, s.currency);
        SettlementView {
            object: "settlement".into(),
            merchant_id: s.merchant_id.clone(),
            date: s.business_date.clone(),
            currency: s.currency.code().into(),
            payments: CountAmount {
                count: s.payments_count,
                amount: a(s.payments_minor),
            },
            refunds: CountAmount {
                count: s.refunds_count,
                amount: a(s.refunds_minor),
            },
            fees: a(s.fees_minor),
            net: a(s.net_minor),
            carried_in: a(s.carried_in_minor),
            settled: a(s.settled_minor),
            carried_out: a(s.carried_out_minor),
            starts_at: s.starts_at.to_rfc3339(),
            ends_at: s.ends_at.to_rfc3339(),
            created_at: s.created_at.to_rfc3339(),
        }
    }
}

/// What a run over every merchant came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SettlementRun {
    pub date: String,
    /// Settled by this run.
    pub settled_now: u64,
    /// Settled before (unchanged).
    pub settled_before: u64,
    /// Merchants whose day could not be settled, and why.
    pub failed: Vec<(String, String)>,
}

/// Most days one list of settlements spans (and returns).
const LIST_DAYS: i64 = 366;

/// How long after a day ends its settlement starts: movements stamped in
/// the day that are still being written land first (one that does not is
/// refused and retried in the next day).
pub const SETTLEMENT_DELAY_MS: i64 = 10 * 60 * 1000;

/// How long one node holds the settlement run before another may take it.
const LEASE_MS: i64 = 15 * 60 * 1000;

impl<S: Store> Gateway<S> {
    /// Settle `day` for one merchant: the settlement made now, or the one
    /// made before (`false`).
    pub async fn settle_day(
        &self,
        by: By<'_>,
        merchant_id: &str,
        day: BusinessDay,
    ) -> Result<(SettlementView, bool), Error> {
        let offset = self.limits.business_offset_minutes;
        let now = self.now();
        let (starts_at, ends_at) = (day.starts_at(offset), day.ends_at(offset));
        // Settled before: the settlement, read without a write or a lock.
        if let Some(s) = self.store.settlement(merchant_id, &day.to_string()).await? {
            return Ok((SettlementView::of(&s), false));
        }
        let from = ends_at
            .checked_add_millis(SETTLEMENT_DELAY_MS)
            .unwrap_or(ends_at);
        if now < from {
            return Err(Error::new(
                Kind::Conflict,
                "day_not_over",
                format!(
                    "{day} ends at {}; it can be settled from {} (movements of the day still being written land first)",
                    ends_at.to_rfc3339(),
                    from.to_rfc3339()
                ),
            )
            .with_rule("QG-SETTLEMENT-CYCLE"));
        }
        let currency = crate::CURRENCY;
        let acc = MerchantAccounts::of(merchant_id, currency);
        let job = SettleDay {
            merchant_id: merchant_id.to_owned(),
            business_date: day.to_string(),
            currency,
            pending: acc.pending,
            available: acc.available,
            fee_revenue: acc.fees,
            starts_at,
            ends_at,
            at: now,
            posting_id: format!("pst_settle_{merchant_id}_{day}"),
            audit: trail::entry(
                Action::SettlementClosed,
                format!("{merchant_id}/{day}"),
                by,
                json!({ "merchant_id": merchant_id, "date": day.to_string() }),
            ),
        };
        match self.store.settle_day(job).await {
            Ok(Settled::Now(s)) => Ok((SettlementView::of(&s), true)),
            Ok(Settled::Before(s)) => Ok((SettlementView::of(&s), false)),
            Err(MovementError::UnknownAccount { .. }) => {
                Err(Error::not_found("merchant", merchant_id))
            }
            Err(MovementError::SettledLater { closed_until, .. }) => Err(Error::new(
                Kind::Conflict,
                "settled_later",
                format!(
                    "{merchant_id} is settled up to {}; {day} came before and was never settled on its own: its money was settled with the later day",
                    closed_until.to_rfc3339()
                ),
            )
            .with_rule("QG-SETTLEMENT-CYCLE")),
            Err(e) => Err(e.into()),
        }
    }

    /// Settle `day` for every merchant, page by page. A merchant that fails
    /// is reported and the run goes on; running it again settles only what
    /// is left.
    pub async fn settle_all(&self, by: By<'_>, day: BusinessDay) -> Result<SettlementRun, Error> {
        let mut run = SettlementRun {
            date: day.to_string(),
            ..SettlementRun::default()
        };
        let mut pages = super::MerchantPages::default();
        loop {
            let ids = pages.next(&self.store).await?;
            if ids.is_empty() {
                return Ok(run);
            }
            for id in ids {
                match self.settle_day(by, &id, day).await {
                    Ok((_, true)) => run.settled_now += 1,
                    Ok((_, false)) => run.settled_before += 1,
                    Err(e) if e.code == "day_not_over" => return Err(e),
                    Err(e) => run.failed.push((id, format!("{}: {}", e.code, e.message))),
                }
            }
        }
    }

    /// The job's step: when yesterday ended more than
    /// [`SETTLEMENT_DELAY_MS`] ago and `done` is not yesterday, settle it for
    /// every merchant under the `settlement` lease (one node of several
    /// runs it; another takes over when the lease lapses). Returns the
    /// day once every merchant's is settled, so the caller stops asking.
    pub async fn settle_due(
        &self,
        holder: &str,
        done: Option<BusinessDay>,
    ) -> Result<Option<BusinessDay>, Error> {
        let now = self.now();
        let offset = self.limits.business_offset_minutes;
        let yesterday = BusinessDay::of(now, offset).previous();
        let due = yesterday.ends_at(offset).unix_millis() + SETTLEMENT_DELAY_MS;
        if done == Some(yesterday) || now.unix_millis() < due {
            return Ok(done);
        }
        let until = now.checked_add_millis(LEASE_MS).unwrap_or(now);
        if !self
            .store
            .take_lease("settlement", holder, now, until)
            .await?
        {
            return Ok(done);
        }
        let run = self
            .settle_all(By::Gateway("settlement"), yesterday)
            .await?;
        tracing::info!(
            date = %yesterday,
            settled_now = run.settled_now,
            settled_before = run.settled_before,
            failed = run.failed.len(),
            "daily settlement"
        );
        for (merchant, why) in &run.failed {
            tracing::warn!(%merchant, %why, "a merchant's day was not settled");
        }
        // The day's money is available: pay it out.
        let payouts = self.pay_out_all(By::Gateway("settlement")).await?;
        tracing::info!(date = %yesterday, payouts = payouts.len(), "daily payouts");
        Ok(if run.failed.is_empty() {
            Some(yesterday)
        } else {
            done
        })
    }

    /// One settled day: a merchant key's own (`merchant_id` may be left
    /// out), any merchant's for admin and auditor keys.
    pub async fn get_settlement(
        &self,
        p: &Principal,
        merchant_id: Option<&str>,
        date: &str,
    ) -> Result<SettlementView, Error> {
        let id = self.money_of(p, merchant_id)?;
        let day = BusinessDay::parse(date)
            .map_err(|e| Error::bad_request("invalid_request", e.to_string()))?;
        let s = self
            .store
            .settlement(id, &day.to_string())
            .await?
            .ok_or_else(|| Error::not_found("settlement", &format!("{id}/{day}")))?;
        Ok(SettlementView::of(&s))
    }

    /// Settled days from `from` to `to` (inclusive, at most 366 days),
    /// newest first.
    pub async fn list_settlements(
        &self,
        p: &Principal,
        merchant_id: Option<&str>,
        from: &str,
        to: &str,
    ) -> Result<Vec<SettlementView>, Error> {
        let id = self.money_of(p, merchant_id)?;
        let parse = |name: &str, d: &str| {
            BusinessDay::parse(d)
                .map_err(|e| Error::bad_request("invalid_request", format!("{name}: {e}")))
        };
        let (from, to) = (parse("from", from)?, parse("to", to)?);
        if from > to {
            return Err(Error::bad_request(
                "invalid_request",
                "from must not be after to",
            ));
        }
        if from.days_until(to) >= LIST_DAYS {
            return Err(Error::bad_request(
                "invalid_request",
                "from and to are at most 366 days apart",
            ));
        }
        let rows = self
            .store
            .settlements(id, (&from.to_string(), &to.to_string()), LIST_DAYS)
            .await?;
        Ok(rows.iter().map(SettlementView::of).collect())
    }

    /// Whose money a caller reads: a merchant key its own (another's is
    /// not found), admin and auditor keys the merchant they name.
    pub(crate) fn money_of<'a>(
        &self,
        p: &'a Principal,
        merchant_id: Option<&'a str>,
    ) -> Result<&'a str, Error> {
        p.require(&[Role::Merchant, Role::Admin, Role::Auditor])?;
        match (p.role, merchant_id) {
            (Role::Merchant, None) => p.merchant(),
            (Role::Merchant, Some(id)) if Some(id) == p.subject.as_deref() => Ok(id),
            (Role::Merchant, Some(id)) => Err(Error::not_found("merchant", id)),
            (_, Some(id)) => Ok(id),
            (_, None) => Err(Error::bad_request(
                "invalid_request",
                "merchant_id is required: admin and auditor keys name the merchant whose money they read",
            )),
        }
    }
}
