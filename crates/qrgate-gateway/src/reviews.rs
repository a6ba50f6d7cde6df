//! The operator's queue: static codes suspended after several payers
//! reported them tampered (oldest first), complaints waiting for a
//! decision (escalated or contested, and not parked), the nearest deadline
//! first; then the
//! complaints that report fraud (`not_authorised`: the payer's device or
//! card was used by someone else; `code_tampered`: a code laid over the
//! shop's), with the device or static code they name, and the payments the
//! risk checks let through but flagged for a person to look at
//! (`flag_for_review`), oldest first; and the operator's decision on a
//! flagged payment, a fraud report or a suspended static code (`clear` or
//! `confirm`, with a reason, once, in the audit chain; for a static code
//! `clear` lifts the suspension and `confirm` revokes it). The operator is an admin key (see the
//! README, "Complaints").

use serde::{Deserialize, Serialize};
use serde_json::json;

use qrgate_core::Timestamp;
use qrgate_store::{Movement, MovementError, Record, Review, Store, StoreError};

use crate::payments::created_range;
use crate::trail::{self, Action};
use crate::views::{amount, ts};
use crate::{Error, Gateway, Kind, Principal, Role};

/// Pages of flagged payments one read of the queue looks through.
const FLAGGED_PAGES: usize = 20;

/// Which items of the queue.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// `static_code`, `complaint`, `fraud_report` or `payment` (all when
    /// absent).
    pub kind: Option<String>,
    pub merchant_id: Option<String>,
    /// Only items waiting at least this many hours.
    pub min_age_hours: Option<i64>,
    /// Flagged payments and fraud reports made at or after this time (RFC
    /// 3339; default 30 days ago).
    pub created_gte: Option<String>,
    /// 1 to 100 of each kind (default 50).
    pub limit: Option<i64>,
}

/// One item of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReviewItem {
    /// `static_code`, `complaint`, `fraud_report` or `payment`.
    pub kind: &'static str,
    /// The static code's, the complaint's or the payment's id.
    pub id: String,
    pub merchant_id: String,
    /// The complaint's status (any, for a fraud report), `flagged`, or a
    /// static code's `suspended`.
    pub status: String,
    /// What it is about: the complaint's reason (and, for a fraud report,
    /// `device:<id>` or `static_code:<id>` of the payment), or the rules
    /// that flagged the payment.
    pub about: Vec<String>,
    /// What is at stake (absent for a static code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// When it started waiting (filed, or paid).
    pub since: String,
    /// A complaint's deadline to be resolved (QG-COMPLAINT-RESOLVE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

/// The queue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewQueue {
    pub object: &'static str,
    pub data: Vec<ReviewItem>,
}

impl<S: Store> Gateway<S> {
    /// The operator's queue (admins; auditors read it too).
    pub async fn reviews(&self, p: &Principal, q: ReviewQuery) -> Result<ReviewQueue, Error> {
        p.require(&[Role::Admin, Role::Auditor])?;
        let now = self.now();
        let limit = q.limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(Error::bad_request(
                "invalid_request",
                "limit must be 1 to 100",
            ));
        }
        let kind = q.kind.as_deref();
        if !matches!(
            kind,
            None | Some("static_code" | "complaint" | "fraud_report" | "payment")
        ) {
            return Err(Error::bad_request(
                "invalid_request",
                format!(
                    "kind must be static_code, complaint, fraud_report or payment; not {:?}",
                    kind.unwrap_or_default()
                ),
            ));
        }
        let wants = |k: &str| kind.is_none_or(|want| want == k);
        let min_age_ms = match q.min_age_hours {
            Some(h) if !(0..=24 * 366).contains(&h) => {
                return Err(Error::bad_request(
                    "invalid_request",
                    "min_age_hours must be 0 to 8784",
                ));
            }
            h => h.unwrap_or(0) * 3_600_000,
        };
        // Only what has waited `min_age_ms`: filed or made by then.
        let until = now.checked_add_millis(-min_age_ms).unwrap_or(now);
        let mut data = Vec::new();
        if wants("static_code") {
            // First: a suspended code stops the shop's sales.
            let codes = self
                .store
                .suspended_static_codes(q.merchant_id.as_deref(), limit)
                .await?;
            data.extend(
                codes
                    .iter()
                    .filter_map(|sc| Some((sc, sc.suspended_at?)))
                    .filter(|(_, at)| *at <= until)
                    .map(|(sc, at)| ReviewItem {
                        kind: "static_code",
                        id: sc.id.clone(),
                        merchant_id: sc.merchant_id.clone(),
                        status: "suspended".into(),
                        about: vec!["code_tampered".into()],
                        amount: None,
                        since: ts(at),
                        deadline: None,
                    }),
            );
        }
        if wants("complaint") {
            let waiting = self
                .store
                .complaints_to_decide(q.merchant_id.as_deref(), (now, until), limit)
                .await?;
            data.extend(waiting.iter().map(|k| ReviewItem {
                kind: "complaint",
                id: k.id.clone(),
                merchant_id: k.merchant_id.clone(),
                status: k.status.as_str().into(),
                about: vec![k.reason.as_str().into()],
                amount: Some(amount(k.amount_minor, k.currency)),
                since: ts(k.created_at),
                deadline: Some(ts(k.resolve_by)),
            }));
        }
        let (gte, _) = created_range(q.created_gte.as_deref(), None)?;
        let since = gte.unwrap_or_else(|| crate::complaints::days_before(now, 30));
        if wants("fraud_report") {
            data.extend(
                self.fraud_items(q.merchant_id.as_deref(), (since, until), limit)
                    .await?,
            );
        }
        if wants("payment") {
            data.extend(
                self.flagged_items(q.merchant_id.as_deref(), (since, until), limit)
                    .await?,
            );
        }
        Ok(ReviewQueue {
            object: "list",
            data,
        })
    }

    /// The fraud reports filed in `filed`, oldest first, with the device
    /// or static code of their payment.
    async fn fraud_items(
        &self,
        merchant: Option<&str>,
        filed: (Timestamp, Timestamp),
        limit: i64,
    ) -> Result<Vec<ReviewItem>, Error> {
        let mut items = Vec::new();
        for k in self.store.fraud_reports(merchant, filed, limit).await? {
            let mut about = vec![k.reason.as_str().to_owned()];
            // The payment is read for what it names; one gone missing
            // does not hide the rest.
            if let Ok(pay) = self.complained_payment(&k).await {
                about.extend(pay.details.device_id.map(|d| format!("device:{d}")));
                about.extend(
                    pay.details
                        .static_code_id
                        .map(|c| format!("static_code:{c}")),
                );
            }
            items.push(ReviewItem {
                kind: "fraud_report",
                id: k.id.clone(),
                merchant_id: k.merchant_id.clone(),
                status: k.status.as_str().into(),
                about,
                amount: Some(amount(k.amount_minor, k.currency)),
                since: ts(k.created_at),
                deadline: None,
            });
        }
        Ok(items)
    }

    /// The flagged payments made in `made` without a decision, oldest
    /// first: those whose checks flagged them (the text the store matches
    /// may also be in a merchant's metadata, which does not count), read
    /// a page at a time so such payments never hide real ones, up to
    /// [`FLAGGED_PAGES`] pages.
    async fn flagged_items(
        &self,
        merchant: Option<&str>,
        made: (Timestamp, Timestamp),
        limit: i64,
    ) -> Result<Vec<ReviewItem>, Error> {
        let mut items = Vec::new();
        let mut cursor: Option<(Timestamp, String)> = None;
        for _ in 0..FLAGGED_PAGES {
            let after = cursor.as_ref().map(|(t, id)| (*t, id.as_str()));
            let page = self
                .store
                .flagged_payments(merchant, made, after, limit)
                .await?;
            for p in &page {
                let flags = p.details.flags();
                if flags.is_empty() || items.len() as i64 >= limit {
                    continue;
                }
                items.push(ReviewItem {
                    kind: "payment",
                    id: p.id.clone(),
                    merchant_id: p.merchant_id.clone(),
                    status: "flagged".into(),
                    about: flags.into_iter().map(str::to_owned).collect(),
                    amount: Some(amount(p.amount_minor, p.currency)),
                    since: ts(p.created_at),
                    deadline: None,
                });
            }
            match page.last() {
                Some(last) if (page.len() as i64) == limit && (items.len() as i64) < limit => {
                    cursor = Some((last.created_at, last.id.clone()));
                }
                _ => break,
            }
        }
        Ok(items)
    }

    /// The operator's decision on a payment the risk checks flagged
    /// (`kind` `payment`) or a fraud report (`fraud_report`, a complaint's
    /// id): `clear` (nothing wrong) or `confirm` (it was what was feared;
    /// blocks, revocations and refunds are their own actions). Once each.
    /// A suspended static code (`static_code`): `clear` lifts the
    /// suspension, `confirm` revokes the code.
    pub async fn decide_review(
        &self,
        p: &Principal,
        kind: &str,
        id: &str,
        decision: &str,
        reason: &str,
    ) -> Result<Review, Error> {
        p.require(&[Role::Admin])?;
        if kind == "static_code" {
            let reason = qrgate_core::complaint::checked_text("reason", reason)
                .map_err(|e| Error::bad_request("invalid_request", e.to_string()))?;
            return self.decide_static_code(p, id, decision, reason).await;
        }
        let (payment_id, kind) = match kind {
            "payment" => (id.to_owned(), "payment"),
            "fraud_report" => {
                let k = self.complaint_for(p, id).await?;
                if !k.reason.is_fraud() {
                    return Err(Error::new(
                        Kind::Conflict,
                        "not_flagged",
                        format!("complaint {id} does not report fraud ({})", k.reason),
                    ));
                }
                (k.payment_id, "fraud_report")
            }
            other => {
                return Err(Error::bad_request(
                    "invalid_request",
                    format!(
                        "a review is of a payment, a fraud_report or a static_code; not {other:?}"
                    ),
                ));
            }
        };
        if !matches!(decision, "clear" | "confirm") {
            return Err(Error::bad_request(
                "invalid_request",
                format!("decision must be clear or confirm; not {decision:?}"),
            ));
        }
        let reason = qrgate_core::complaint::checked_text("reason", reason)
            .map_err(|e| Error::bad_request("invalid_request", e.to_string()))?;
        let pay = self.payment_for(p, &payment_id).await?;
        if kind == "payment" && pay.details.flags().is_empty() {
            return Err(Error::new(
                Kind::Conflict,
                "not_flagged",
                format!("payment {payment_id} was not flagged for review"),
            ));
        }
        let now = self.now();
        let review = Review {
            kind: kind.into(),
            subject_id: id.to_owned(),
            merchant_id: pay.merchant_id.clone(),
            decision: decision.into(),
            reason,
            decided_by: p.key_id.clone(),
            created_at: now,
        };
        let mut m = Movement::new(now);
        m.audit = Some(trail::entry(
            Action::ReviewDecided,
            id.to_owned(),
            p.into(),
            json!({ "kind": kind, "payment_id": pay.id, "decision": decision, "reason": review.reason, "flags": pay.details.flags() }),
        ));
        m.records.push(Record::Review(review.clone()));
        match self.store.apply(m).await {
            Ok(_) => Ok(review),
            Err(MovementError::Store(StoreError::AlreadyExists(_))) => Err(Error::new(
                Kind::Conflict,
                "review_decided",
                format!("{kind} {id} was decided on before"),
            )),
            Err(e) => Err(e.into()),
        }
    }
}
