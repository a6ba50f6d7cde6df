//! Complaints: a payer disputes one of their payments. A small disputed
//! amount is refunded on the spot (QG-COMPLAINT-INSTANT-REFUND); anything
//! else is a ticket the merchant answers by a deadline, the payer accepts
//! or escalates, and the operator decides. Every move is one movement
//! guarded by the complaint's status and version, with the refund it makes
//! (if any) in the same transaction.
//!
//! - `file.rs`: filing, and the instant refund;
//! - `moves.rs`: the merchant's answer and contest, the payer's accept or
//!   escalate, the operator's decision;
//! - `figures.rs`: the service figures (first response, deadlines,
//!   first resolution, escalation, complaint rate and its alarm);
//! - `photos.rs`: the payer's photos (JPEG or PNG, size and count capped);
//! - `tamper.rs`: a static code several payers report tampered is
//!   suspended until the operator clears or confirms it;
//! - `sweep.rs`: the deadlines (a missed answer escalates, a silent payer
//!   accepts, an uncontested instant refund is final).

mod figures;
mod file;
mod moves;
mod photos;
mod sweep;
mod tamper;

pub use figures::{ComplaintFigures, FiguresQuery, ResponseTimes, Share};
pub use file::NewComplaint;
pub use moves::{Answer, Decision, PayerMove};
pub use photos::{ComplaintPhotoView, photo_too_large, sniff_image};

use serde::{Deserialize, Serialize};

use qrgate_core::Timestamp;
use qrgate_core::state::ComplaintStatus;
use qrgate_store::{
    Complaint, ComplaintMove, ComplaintQuery, ComplaintStep, Payment, Refund, Store,
};

use crate::payments::created_range;
use crate::views::{amount, ts};
use crate::{Error, Gateway, Principal, Role};

/// A complaint as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ComplaintView {
    pub id: String,
    pub object: String,
    pub payment_id: String,
    pub merchant_id: String,
    /// The payer (admins and auditors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// not_received, wrong_amount, not_authorised, charged_twice,
    /// code_tampered or other.
    pub reason: String,
    pub description: String,
    /// What the payer disputes.
    pub amount: String,
    pub currency: String,
    /// open, answered, escalated, refunded_instantly, contested, resolved.
    pub status: String,
    /// Whose move it is: merchant, payer, operator; absent once resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Refunded on the spot when it was filed.
    pub instant: bool,
    /// Money returned to the payer under this complaint.
    pub refunded: String,
    /// When the party whose move it is must have moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    /// The deadline to have it resolved (QG-COMPLAINT-RESOLVE).
    pub resolve_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// A parked ticket is back in the operator's queue at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revisit_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Who did what, in order.
    pub steps: Vec<ComplaintStepView>,
    /// The payer's photos (listed when one complaint is read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<ComplaintPhotoView>,
}

/// One step of a complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ComplaintStepView {
    pub seq: i64,
    /// payer, merchant, operator or gateway.
    pub actor: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    pub created_at: String,
}

impl ComplaintView {
    pub(crate) fn of(k: &Complaint, steps: &[ComplaintStep], role: Role) -> ComplaintView {
        let opt = |t: Option<Timestamp>| t.map(ts);
        ComplaintView {
            id: k.id.clone(),
            object: "complaint".into(),
            payment_id: k.payment_id.clone(),
            merchant_id: k.merchant_id.clone(),
            customer_id: matches!(role, Role::Admin | Role::Auditor).then(|| k.customer_id.clone()),
            reason: k.reason.as_str().into(),
            description: k.description.clone(),
            amount: amount(k.amount_minor, k.currency),
            currency: k.currency.code().into(),
            status: k.status.as_str().into(),
            waiting_for: k.status.waiting_for().map(Into::into),
            resolution: k.resolution.map(|r| r.as_str().into()),
            instant: k.instant,
            refunded: amount(k.refunded_minor, k.currency),
            due_at: opt(k.due_at),
            resolve_by: ts(k.resolve_by),
            first_response_at: opt(k.first_response_at),
            escalated_at: opt(k.escalated_at),
            resolved_at: opt(k.resolved_at),
            revisit_at: opt(k.revisit_at),
            created_at: ts(k.created_at),
            updated_at: ts(k.updated_at),
            steps: steps
                .iter()
                .map(|s| ComplaintStepView {
                    seq: s.seq,
                    actor: s.actor.clone(),
                    action: s.action.clone(),
                    body: s.body.clone(),
                    amount: s.amount_minor.map(|m| amount(m, k.currency)),
                    created_at: ts(s.created_at),
                })
                .collect(),
            photos: Vec::new(),
        }
    }
}

/// Which complaints, newest first.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ComplaintListQuery {
    /// Admin and auditor keys: only this merchant's.
    pub merchant_id: Option<String>,
    /// Only the complaints about this payment.
    pub payment_id: Option<String>,
    /// Only complaints in this status.
    pub status: Option<String>,
    /// Filed at or after this time (RFC 3339).
    pub created_gte: Option<String>,
    /// Filed before this time (RFC 3339).
    pub created_lt: Option<String>,
    /// The id of the last complaint of the previous page.
    pub starting_after: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<i64>,
}

/// A page of complaints (without their steps; read one for them).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ComplaintPage {
    pub object: &'static str,
    pub data: Vec<ComplaintView>,
    pub has_more: bool,
}

impl<S: Store> Gateway<S> {
    /// A complaint the principal may see (its payer, its merchant, admins
    /// and auditors); anyone else's answers 404 like a missing one.
    pub(crate) async fn complaint_for(&self, p: &Principal, id: &str) -> Result<Complaint, Error> {
        let k = self
            .store
            .complaint(id)
            .await?
            .ok_or_else(|| Error::not_found("complaint", id))?;
        let visible = match p.role {
            Role::Admin | Role::Auditor => true,
            Role::Merchant => p.subject.as_deref() == Some(k.merchant_id.as_str()),
            Role::Consumer => p.subject.as_deref() == Some(k.customer_id.as_str()),
        };
        if !visible {
            return Err(Error::not_found("complaint", id));
        }
        Ok(k)
    }

    /// One complaint with its steps.
    pub async fn get_complaint(&self, p: &Principal, id: &str) -> Result<ComplaintView, Error> {
        let k = self.complaint_for(p, id).await?;
        let steps = self.store.complaint_steps(&k.id).await?;
        let mut view = ComplaintView::of(&k, &steps, p.role);
        view.photos = self.photo_views(&k).await?;
        Ok(view)
    }

    /// The principal's complaints: a payer's own, a merchant's about its
    /// payments, anyone's for admins and auditors.
    pub async fn list_complaints(
        &self,
        p: &Principal,
        q: ComplaintListQuery,
    ) -> Result<ComplaintPage, Error> {
        let (created_gte, created_lt) =
            created_range(q.created_gte.as_deref(), q.created_lt.as_deref())?;
        let limit = q.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(Error::bad_request(
                "invalid_request",
                "limit must be 1 to 100",
            ));
        }
        let mut query = ComplaintQuery {
            payment_id: q.payment_id,
            statuses: q
                .status
                .as_deref()
                .map(status)
                .transpose()?
                .into_iter()
                .collect(),
            created_gte,
            created_lt,
            limit,
            ..Default::default()
        };
        match p.role {
            Role::Admin | Role::Auditor => query.merchant_id = q.merchant_id,
            Role::Merchant => {
                if q.merchant_id
                    .is_some_and(|m| Some(&m) != p.subject.as_ref())
                {
                    return Err(Error::forbidden("a merchant key reads its own complaints"));
                }
                query.merchant_id = Some(self.subject_of(p)?);
            }
            Role::Consumer => {
                if q.merchant_id.is_some() {
                    return Err(Error::bad_request(
                        "invalid_request",
                        "merchant_id is for admin and auditor keys",
                    ));
                }
                query.customer_id = Some(self.subject_of(p)?);
            }
        }
        if let Some(after) = q.starting_after {
            // The cursor must be one the caller may see.
            self.complaint_for(p, &after).await?;
            query.starting_after = Some(after);
        }
        let (page, has_more) = self.store.complaints(&query).await?;
        Ok(ComplaintPage {
            object: "list",
            data: page
                .iter()
                .map(|k| ComplaintView::of(k, &[], p.role))
                .collect(),
            has_more,
        })
    }

    fn subject_of(&self, p: &Principal) -> Result<String, Error> {
        p.subject
            .clone()
            .ok_or_else(|| Error::forbidden("this key acts for no merchant or customer"))
    }

    /// The payment `k` is about.
    pub(crate) async fn complained_payment(&self, k: &Complaint) -> Result<Payment, Error> {
        self.store
            .payment(&k.payment_id)
            .await?
            .ok_or_else(|| Error::not_found("payment", &k.payment_id))
    }

    /// The payment `k` is about and its refund numbered `number` (the
    /// gateway's number, with its prefix), made under `k`.
    pub(crate) async fn complaint_refund(
        &self,
        k: &Complaint,
        number: &str,
    ) -> Result<(Payment, Refund), Error> {
        let pay = self.complained_payment(k).await?;
        let refund = self
            .store
            .refunds(&pay.id)
            .await?
            .into_iter()
            .find(|r| r.out_refund_no == number)
            .ok_or_else(|| {
                Error::internal(format!(
                    "complaint {} names refund {number}, which is not there",
                    k.id
                ))
            })?;
        Ok((pay, refund))
    }

    /// `k`'s view after `mv` (and its steps so far, with the new one).
    pub(crate) async fn view_after(
        &self,
        k: &Complaint,
        mv: &ComplaintMove,
        role: Role,
    ) -> Result<ComplaintView, Error> {
        let mut steps = self.store.complaint_steps(&k.id).await?;
        steps.push(mv.step.clone());
        Ok(ComplaintView::of(&moved(k, mv), &steps, role))
    }
}

/// `k` as it is after `mv` is written (what the store's update does).
pub(crate) fn moved(k: &Complaint, mv: &ComplaintMove) -> Complaint {
    let at = mv.step.created_at;
    let mut k = k.clone();
    k.status = mv.to;
    k.resolution = mv.resolution.or(k.resolution);
    k.due_at = mv.due_at;
    k.revisit_at = mv.revisit_at;
    if mv.responded {
        k.first_response_at = k.first_response_at.or(Some(at));
    }
    if mv.escalated {
        k.escalated_at = k.escalated_at.or(Some(at));
    }
    if mv.to == ComplaintStatus::Resolved {
        k.resolved_at = Some(at);
    }
    k.refunded_minor += mv.refunded_minor;
    k.version += 1;
    k.updated_at = at;
    k
}

/// A move of `k` to `to` by `actor`, with the step that records it.
pub(crate) fn step_to(
    k: &Complaint,
    to: ComplaintStatus,
    actor: &str,
    action: &str,
    body: Option<String>,
    at: Timestamp,
) -> Result<ComplaintMove, Error> {
    k.status
        .transition(to)
        .map_err(|e| complaint_moved(&k.id, k.status, &e.to_string()))?;
    Ok(ComplaintMove {
        id: k.id.clone(),
        from: k.status,
        version: k.version,
        to,
        resolution: None,
        due_at: None,
        revisit_at: None,
        responded: false,
        escalated: false,
        refunded_minor: 0,
        processor_pending: None,
        within_due: false,
        step: ComplaintStep {
            complaint_id: k.id.clone(),
            seq: k.version + 1,
            actor: actor.into(),
            action: action.into(),
            body,
            amount_minor: None,
            created_at: at,
        },
    })
}

pub(crate) fn complaint_moved(id: &str, status: ComplaintStatus, why: &str) -> Error {
    Error::new(
        crate::Kind::Conflict,
        "complaint_state_conflict",
        format!("complaint {id} is {status}: {why}"),
    )
}

fn status(s: &str) -> Result<ComplaintStatus, Error> {
    s.parse().map_err(|_| {
        Error::bad_request(
            "invalid_request",
            format!(
                "status must be one of open, answered, escalated, refunded_instantly, contested, resolved; not {s:?}"
            ),
        )
    })
}

/// `days` days before `t`.
pub(crate) fn days_before(t: Timestamp, days: i64) -> Timestamp {
    after(t, -days.saturating_mul(86_400))
}

/// `t + seconds`, saturating.
pub(crate) fn after(t: Timestamp, seconds: i64) -> Timestamp {
    t.checked_add_millis(seconds.saturating_mul(1000))
        .unwrap_or(t)
}
