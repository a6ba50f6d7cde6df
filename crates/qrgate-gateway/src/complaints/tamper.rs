//! A static code several payers report tampered (a code stuck over the
//! shop's, complaint reason `code_tampered`) is suspended: once
//! QG-COMPLAINT-TAMPER-REPORTS different payers reported it within
//! QG-COMPLAINT-TAMPER-WINDOW, scans of it are refused (`code_suspended`)
//! and the merchant gets a `static_code.suspended` event. The operator
//! then clears it (scans work again; the reports so far stop counting) or
//! confirms it (the code is revoked). The count is taken in the write that
//! suspends, after the report that triggers it has committed, so reports
//! arriving together cannot all miss the number; the complaints sweeper
//! also suspends any code whose count is reached but whose suspension
//! write did not happen (the request stopped or the process died after the
//! report committed). Only reports about payments made within the window
//! count, so old payments cannot be dug up to suspend a shop's code.

use serde_json::json;

use qrgate_store::{ComplaintWrite, CredentialChange, Movement, MovementError, Review, Store};

use crate::events::Event;
use crate::trail::{self, Action, By};
use crate::{Error, Gateway, Kind, Principal, Role};

/// Codes the sweeper suspends at most per pass.
const SWEEP_CODES: i64 = 100;

impl<S: Store> Gateway<S> {
    /// After a `code_tampered` report about a payment made with static code
    /// `code_id` of `merchant_id`: suspend the code if enough payers have
    /// reported it. The report stands whatever happens here; a failure is
    /// logged, and the next report tries again.
    pub(super) async fn suspend_if_reported(&self, merchant_id: &str, code_id: &str) -> bool {
        let lim = self.limits.complaints;
        let now = self.now();
        let mut m = Movement::new(now);
        m.complaint = Some(ComplaintWrite::SuspendCode {
            code_id: code_id.to_owned(),
            reporters: lim.tamper_reporters,
            since: super::after(now, -lim.tamper_window_seconds),
        });
        let event = Event::StaticCodeSuspended {
            code_id,
            threshold: lim.tamper_reporters,
        };
        match self.outbox(merchant_id, event) {
            Ok(row) => m.events.push(row),
            Err(e) => {
                tracing::error!(code = %code_id, error = %e, "could not build the suspension event");
                return false;
            }
        }
        m.audit = Some(trail::entry(
            Action::StaticCodeSuspended,
            code_id.to_owned(),
            By::Gateway("QG-COMPLAINT-TAMPER-REPORTS"),
            json!({ "merchant_id": merchant_id, "reporters": lim.tamper_reporters, "window_seconds": lim.tamper_window_seconds }),
        ));
        match self.store.apply(m).await {
            Ok(_) => {
                tracing::warn!(code = %code_id, merchant = %merchant_id, "static code suspended: payers reported it tampered");
                true
            }
            Err(MovementError::CodeNotSuspended { .. }) => false,
            Err(e) => {
                tracing::error!(code = %code_id, error = %e, "could not suspend a reported static code; the sweeper tries again");
                false
            }
        }
    }

    /// The sweeper's part: suspend every code whose reports reached the
    /// number without being suspended. How many it suspended.
    pub(super) async fn suspend_reported_codes(&self) -> Result<usize, Error> {
        let lim = self.limits.complaints;
        let since = super::after(self.now(), -lim.tamper_window_seconds);
        let due = self
            .store
            .codes_due_for_suspension(since, lim.tamper_reporters, SWEEP_CODES)
            .await?;
        let mut suspended = 0;
        for (code, merchant) in &due {
            if self.suspend_if_reported(merchant, code).await {
                suspended += 1;
            }
        }
        Ok(suspended)
    }

    /// The operator's decision on a suspended static code: `clear` lifts
    /// the suspension (its reports so far stop counting), `confirm`
    /// revokes the code. Once per suspension; in the audit chain with the
    /// reason.
    pub(crate) async fn decide_static_code(
        &self,
        p: &Principal,
        id: &str,
        decision: &str,
        reason: String,
    ) -> Result<Review, Error> {
        p.require(&[Role::Admin])?;
        let sc = self
            .store
            .static_code(id)
            .await?
            .ok_or_else(|| Error::not_found("static code", id))?;
        let not_suspended = || {
            Error::new(
                Kind::Conflict,
                "not_suspended",
                format!("static code {id} is not suspended (decided before, or revoked)"),
            )
        };
        let suspended_at = match (sc.suspended_at, sc.revoked_at) {
            (Some(t), None) => t,
            _ => return Err(not_suspended()),
        };
        let (confirmed, action) = match decision {
            "clear" => (false, Action::StaticCodeReinstated),
            "confirm" => (true, Action::StaticCodeRevoked),
            other => {
                return Err(Error::bad_request(
                    "invalid_request",
                    format!("decision must be clear or confirm; not {other:?}"),
                ));
            }
        };
        let change = CredentialChange::StaticCodeSuspension {
            id: sc.id.clone(),
            suspended_at,
            confirmed,
        };
        let now = self.now();
        let audit = trail::entry(
            action,
            sc.id.clone(),
            p.into(),
            json!({ "kind": "static_code", "decision": decision, "reason": reason, "merchant_id": sc.merchant_id, "suspended_at": suspended_at.to_rfc3339() }),
        );
        if !self.store.change_credential(change, now, audit).await? {
            // Decided meanwhile (the change is guarded by the suspension
            // it read) or revoked by the merchant.
            return Err(not_suspended());
        }
        Ok(Review {
            kind: "static_code".into(),
            subject_id: sc.id,
            merchant_id: sc.merchant_id,
            decision: decision.into(),
            reason,
            decided_by: p.key_id.clone(),
            created_at: now,
        })
    }
}
