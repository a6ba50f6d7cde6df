//! The complaints' deadlines, swept by the jobs under a lease: an open
//! complaint the merchant did not answer in time is escalated
//! (QG-COMPLAINT-FIRST-REPLY), an answer the payer left unanswered stands
//! (QG-COMPLAINT-PAYER-REPLY), an instant refund not contested in time is
//! final (QG-COMPLAINT-CONTEST-WINDOW). Each move is guarded by the
//! complaint's status and version, so two sweepers move it once.

use qrgate_core::complaint::Resolution;
use qrgate_core::state::ComplaintStatus;
use qrgate_store::{Complaint, MovementError, Store};

use super::step_to;
use crate::trail::{Action, By};
use crate::{Error, Gateway, Role};

/// Complaints looked at per pass.
const SWEEP_PAGE: i64 = 100;

/// How long one node holds the complaints' lease.
const LEASE_MS: i64 = 60_000;

impl<S: Store> Gateway<S> {
    /// The job's step: under the `complaints` lease, every complaint whose
    /// time is up moves on. Returns how many moved (none when another node
    /// holds the lease).
    pub async fn complaints_step(&self, holder: &str) -> Result<usize, Error> {
        let now = self.now();
        let until = now.checked_add_millis(LEASE_MS).unwrap_or(now);
        if !self
            .store
            .take_lease("complaints", holder, now, until)
            .await?
        {
            return Ok(0);
        }
        let moved = self.sweep_complaints().await?;
        let suspended = self.suspend_reported_codes().await?;
        if suspended > 0 {
            tracing::warn!(
                suspended,
                "static codes suspended by the sweeper (their reports' own writes did not)"
            );
        }
        let confirmed = self.retry_card_refunds().await?;
        if confirmed > 0 {
            tracing::info!(confirmed, "the card processor confirmed complaint refunds");
        }
        Ok(moved)
    }

    /// Move on every complaint whose time is up; how many this call moved
    /// (one another sweeper moved first is not counted).
    pub async fn sweep_complaints(&self) -> Result<usize, Error> {
        let mut moved = 0;
        let now = self.now();
        // A page at a time after the last one seen, so complaints that
        // fail every time do not hold back the ones due after them.
        let mut cursor: Option<(qrgate_core::Timestamp, String)> = None;
        loop {
            let after = cursor.as_ref().map(|(t, id)| (*t, id.as_str()));
            let due = self.store.complaints_due(now, after, SWEEP_PAGE).await?;
            for k in &due {
                match self.sweep_one(k).await {
                    Ok(true) => moved += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(complaint = %k.id, error = %e, "a complaint's deadline was not applied; the next pass tries again")
                    }
                }
            }
            match due.last() {
                Some(last) if due.len() as i64 == SWEEP_PAGE => {
                    cursor = last.due_at.map(|t| (t, last.id.clone()));
                }
                _ => return Ok(moved),
            }
        }
    }

    /// `false` when another sweeper (or the party) moved it first.
    async fn sweep_one(&self, k: &Complaint) -> Result<bool, Error> {
        let now = self.now();
        let (mv, action, rule) = match k.status {
            ComplaintStatus::Open => {
                let mut mv = step_to(
                    k,
                    ComplaintStatus::Escalated,
                    "gateway",
                    "deadline_missed",
                    None,
                    now,
                )?;
                mv.escalated = true;
                (mv, Action::ComplaintEscalated, "QG-COMPLAINT-FIRST-REPLY")
            }
            ComplaintStatus::Answered => {
                let mut mv = step_to(
                    k,
                    ComplaintStatus::Resolved,
                    "gateway",
                    "payer_silent",
                    None,
                    now,
                )?;
                mv.resolution = Some(Resolution::PayerSilent);
                (mv, Action::ComplaintResolved, "QG-COMPLAINT-PAYER-REPLY")
            }
            ComplaintStatus::RefundedInstantly => {
                let mut mv = step_to(
                    k,
                    ComplaintStatus::Resolved,
                    "gateway",
                    "not_contested",
                    None,
                    now,
                )?;
                mv.resolution = Some(Resolution::InstantRefund);
                (mv, Action::ComplaintResolved, "QG-COMPLAINT-CONTEST-WINDOW")
            }
            // No deadline of a party: nothing to sweep.
            _ => return Ok(false),
        };
        let (m, _) = self
            .move_movement(k, mv, action, By::Gateway(rule), Role::Admin, None)
            .await?;
        match self.store.apply(m).await {
            Ok(_) => Ok(true),
            Err(MovementError::ComplaintMoved { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
