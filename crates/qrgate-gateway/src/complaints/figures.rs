//! The service figures of complaints, per merchant or overall, over the
//! complaints filed in a time range (each figure is defined in the
//! README, "Complaints"). Read a page at a time; nothing is kept beside
//! the complaints themselves.

use serde::{Deserialize, Serialize};

use qrgate_core::Timestamp;
use qrgate_core::state::ComplaintStatus;
use qrgate_store::{Complaint, ComplaintQuery, Store};

use crate::payments::created_range;
use crate::views::{amount, ts};
use crate::{Error, Gateway, Principal, Role};

/// Which complaints the figures are of.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FiguresQuery {
    /// Admin and auditor keys: one merchant's (all merchants' when absent).
    pub merchant_id: Option<String>,
    /// Filed at or after this time (RFC 3339; default: 30 days before
    /// `created_lt`).
    pub created_gte: Option<String>,
    /// Filed before this time (RFC 3339; default: now).
    pub created_lt: Option<String>,
}

/// A share: `count` of `of`, and as a percentage with two decimals
/// (absent when `of` is 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Share {
    pub count: i64,
    pub of: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<String>,
}

impl Share {
    fn new(count: i64, of: i64) -> Share {
        Share {
            count,
            of,
            percent: per(count, of, 100),
        }
    }
}

/// The service figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ComplaintFigures {
    pub object: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    pub created_gte: String,
    pub created_lt: String,
    /// Complaints filed in the range.
    pub filed: i64,
    /// Of them, refunded on the spot.
    pub instant_refunds: i64,
    pub instant_refunded_amount: String,
    /// Tickets (not instant) the merchant answered, and the time from
    /// filing to that first answer (seconds, nearest rank).
    pub first_response: ResponseTimes,
    /// Complaints resolved by their deadline (QG-COMPLAINT-RESOLVE), of
    /// those resolved or past it.
    pub resolved_within_deadline: Share,
    /// Complaints resolved without escalation, of those resolved.
    pub first_resolution: Share,
    /// Complaints escalated to the operator, of those filed.
    pub escalated: Share,
    /// Complaints per 1,000 payments that succeeded in the range.
    pub per_thousand_payments: Option<String>,
    pub payments: i64,
    /// The complaint rate is past QG-COMPLAINT-RATE-ALARM (with at least
    /// QG-COMPLAINT-RATE-MIN-PAYMENTS payments).
    pub rate_alarm: bool,
}

/// First-response times in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ResponseTimes {
    /// Tickets that had a first answer from the merchant.
    pub answered: i64,
    /// Tickets without one (still open, or escalated past the deadline).
    pub unanswered: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90_seconds: Option<i64>,
}

/// How many complaints are read per page.
const PAGE: i64 = 1000;

impl<S: Store> Gateway<S> {
    /// The figures over `q`'s range: a merchant key's own, any merchant's
    /// (or all) for admins and auditors.
    pub async fn complaint_figures(
        &self,
        p: &Principal,
        q: FiguresQuery,
    ) -> Result<ComplaintFigures, Error> {
        p.require(&[Role::Merchant, Role::Admin, Role::Auditor])?;
        let merchant = match p.role {
            Role::Merchant => {
                if q.merchant_id
                    .as_ref()
                    .is_some_and(|m| Some(m) != p.subject.as_ref())
                {
                    return Err(Error::forbidden("a merchant key reads its own figures"));
                }
                p.subject.clone()
            }
            _ => q.merchant_id,
        };
        let (gte, lt) = created_range(q.created_gte.as_deref(), q.created_lt.as_deref())?;
        // Up to now, this millisecond included.
        let lt = lt.unwrap_or_else(|| through(self.now()));
        let gte = gte.unwrap_or_else(|| super::after(lt, -30 * 86_400));
        if gte >= lt {
            return Err(Error::bad_request(
                "invalid_request",
                "created_gte must be before created_lt",
            ));
        }
        self.figures_of(merchant, gte, lt).await
    }

    pub(crate) async fn figures_of(
        &self,
        merchant: Option<String>,
        gte: Timestamp,
        lt: Timestamp,
    ) -> Result<ComplaintFigures, Error> {
        let mut tally = Tally::default();
        let mut query = ComplaintQuery {
            merchant_id: merchant.clone(),
            created_gte: Some(gte),
            created_lt: Some(lt),
            limit: PAGE,
            ..Default::default()
        };
        let now = self.now();
        loop {
            let (page, more) = self.store.complaints(&query).await?;
            for k in &page {
                tally.add(k, now);
            }
            match (more, page.last()) {
                (true, Some(last)) => query.starting_after = Some(last.id.clone()),
                _ => break,
            }
        }
        let payments = self
            .store
            .succeeded_payments(merchant.as_deref(), gte, lt)
            .await?;
        let lim = self.limits.complaints;
        let rate_alarm = payments >= lim.rate_min_payments
            && tally.filed.saturating_mul(1000)
                > lim.rate_alarm_per_thousand.saturating_mul(payments);
        Ok(tally.figures(merchant, (gte, lt), payments, rate_alarm))
    }
}

/// What the figures count, complaint by complaint.
#[derive(Default)]
struct Tally {
    filed: i64,
    instant: i64,
    instant_minor: i64,
    response_ms: Vec<i64>,
    unanswered: i64,
    resolved: i64,
    resolved_first_time: i64,
    deadline_due: i64,
    in_time: i64,
    escalated: i64,
}

impl Tally {
    fn add(&mut self, k: &Complaint, now: Timestamp) {
        self.filed += 1;
        let escalated = k.escalated_at.is_some();
        self.escalated += i64::from(escalated);
        // An instant refund returned the money as it was filed: resolved
        // then, in time, without escalation.
        let resolved_at = if k.instant {
            self.instant += 1;
            self.instant_minor += k.amount_minor;
            Some(k.created_at)
        } else {
            match k.first_response_at {
                Some(t) => self.response_ms.push(t.millis_since(k.created_at)),
                None => self.unanswered += 1,
            }
            k.resolved_at
                .filter(|_| k.status == ComplaintStatus::Resolved)
        };
        if let Some(at) = resolved_at {
            self.resolved += 1;
            self.resolved_first_time += i64::from(!escalated);
            self.deadline_due += 1;
            self.in_time += i64::from(at <= k.resolve_by);
        } else if now > k.resolve_by {
            self.deadline_due += 1;
        }
    }

    fn figures(
        mut self,
        merchant: Option<String>,
        (gte, lt): (Timestamp, Timestamp),
        payments: i64,
        rate_alarm: bool,
    ) -> ComplaintFigures {
        self.response_ms.sort_unstable();
        let rank = |p: usize| nearest_rank(&self.response_ms, p).map(|ms| ms / 1000);
        ComplaintFigures {
            object: "complaint_figures",
            merchant_id: merchant,
            created_gte: ts(gte),
            created_lt: ts(lt),
            filed: self.filed,
            instant_refunds: self.instant,
            instant_refunded_amount: amount(self.instant_minor, crate::CURRENCY),
            first_response: ResponseTimes {
                answered: self.response_ms.len() as i64,
                unanswered: self.unanswered,
                p50_seconds: rank(50),
                p90_seconds: rank(90),
            },
            resolved_within_deadline: Share::new(self.in_time, self.deadline_due),
            first_resolution: Share::new(self.resolved_first_time, self.resolved),
            escalated: Share::new(self.escalated, self.filed),
            per_thousand_payments: per(self.filed, payments, 1000),
            payments,
            rate_alarm,
        }
    }
}

/// The end of a range that includes `now`'s millisecond.
fn through(now: Timestamp) -> Timestamp {
    now.checked_add_millis(1).unwrap_or(now)
}

/// The `p`th percentile of `sorted` by nearest rank: the value at rank
/// ⌈p/100 × n⌉ (1-based).
fn nearest_rank(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// `count / of × scale` with two decimals, rounded half up; `None` when
/// `of` is 0.
fn per(count: i64, of: i64, scale: i64) -> Option<String> {
    if of <= 0 {
        return None;
    }
    let hundredths =
        (i128::from(count) * i128::from(scale) * 200 + i128::from(of)) / (2 * i128::from(of));
    Some(format!("{}.{:02}", hundredths / 100, hundredths % 100))
}

impl<S: Store> Gateway<S> {
    /// After a complaint against `merchant` was filed: when its rate over
    /// the last 30 days passes QG-COMPLAINT-RATE-ALARM, a
    /// `complaint.rate_alarm` event, at most one a business day (its id is
    /// the merchant's and the day's, so a second one is not written).
    pub(crate) async fn check_rate_alarm(&self, merchant: &str) {
        let now = self.now();
        let figures = match self
            .figures_of(
                Some(merchant.to_owned()),
                super::after(now, -self.limits.complaints.rate_window_seconds),
                through(now),
            )
            .await
        {
            Ok(f) if f.rate_alarm => f,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(%merchant, error = %e, "the complaint-rate alarm was not checked");
                return;
            }
        };
        let day = qrgate_core::day::BusinessDay::of(now, self.limits.business_offset_minutes);
        let id = format!("evt_alarm_{merchant}_{day}");
        let mut m = qrgate_store::Movement::new(now);
        m.events
            .push(crate::events::Event::ComplaintRateAlarm(&figures).row(id, merchant));
        match self.store.apply(m).await {
            Ok(_) => {
                tracing::warn!(%merchant, rate = ?figures.per_thousand_payments, "complaint-rate alarm")
            }
            // Raised already today.
            Err(qrgate_store::MovementError::Store(e)) if e.is_unique_violation() => {}
            Err(e) => {
                tracing::warn!(%merchant, error = %e, "the complaint-rate alarm was not written")
            }
        }
    }
}

impl<S: Store> Gateway<S> {
    /// The figures of all merchants over the last 30 days, as Prometheus
    /// gauges (shares in percent); empty when they cannot be read (the
    /// rest of `/metrics` is still served).
    pub async fn complaint_gauges(&self) -> String {
        let now = self.now();
        let f = match self
            .figures_of(None, super::after(now, -30 * 86_400), through(now))
            .await
        {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "the complaint figures were not read for /metrics");
                return String::new();
            }
        };
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: Option<String>| {
            if let Some(v) = value {
                out.push_str(&format!(
                    "# HELP {name} {help} (all merchants, the last 30 days).\n# TYPE {name} gauge\n{name} {v}\n"
                ));
            }
        };
        gauge(
            "qrgate_complaints_filed",
            "Complaints filed",
            Some(f.filed.to_string()),
        );
        gauge(
            "qrgate_complaints_instant_refunds",
            "Complaints refunded on the spot",
            Some(f.instant_refunds.to_string()),
        );
        let secs = |v: Option<i64>| v.map(|s| s.to_string());
        gauge(
            "qrgate_complaints_first_response_p50_seconds",
            "Median time from filing to the merchant's first answer",
            secs(f.first_response.p50_seconds),
        );
        gauge(
            "qrgate_complaints_first_response_p90_seconds",
            "90th percentile of the time from filing to the merchant's first answer",
            secs(f.first_response.p90_seconds),
        );
        gauge(
            "qrgate_complaints_resolved_within_deadline_percent",
            "Complaints resolved by their deadline, of those resolved or past it",
            f.resolved_within_deadline.percent.clone(),
        );
        gauge(
            "qrgate_complaints_first_resolution_percent",
            "Complaints resolved without escalation, of those resolved",
            f.first_resolution.percent.clone(),
        );
        gauge(
            "qrgate_complaints_escalated_percent",
            "Complaints escalated to the operator, of those filed",
            f.escalated.percent.clone(),
        );
        gauge(
            "qrgate_complaints_per_thousand_payments",
            "Complaints per 1,000 succeeded payments",
            f.per_thousand_payments.clone(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&v, 50), Some(5));
        assert_eq!(nearest_rank(&v, 90), Some(9));
        assert_eq!(nearest_rank(&[10, 20, 30], 50), Some(20));
        assert_eq!(nearest_rank(&[10, 20, 30], 90), Some(30));
    }

    #[test]
    fn shares_round_half_up_to_two_places() {
        assert_eq!(per(1, 0, 100), None);
        assert_eq!(per(2, 3, 100).as_deref(), Some("66.67"));
        assert_eq!(per(1, 8, 100).as_deref(), Some("12.50"));
        assert_eq!(per(17, 20, 100).as_deref(), Some("85.00"));
        assert_eq!(per(1, 3, 1000).as_deref(), Some("333.33"));
        assert_eq!(per(1, 200_000, 100).as_deref(), Some("0.00"));
        assert_eq!(per(1, 20_000, 100).as_deref(), Some("0.01"));
    }
}
