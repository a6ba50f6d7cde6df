//! The step-up sweeper: payments left `requires_action` past their
//! deadline are canceled, and card confirmations left `confirming` by a
//! node that stopped are canceled a minute later with their authorization
//! reversed. It walks every waiting payment, oldest first, over a partial
//! index, however many there are.

use qrgate_core::Timestamp;
use qrgate_core::state::PaymentStatus;
use qrgate_store::{Payment, Store};

use crate::{Error, Gateway};

impl<S: Store> Gateway<S> {
    /// Cancel `requires_action` payments whose confirmation time has
    /// passed, and card confirmations left `confirming` (their node stopped
    /// while it asked the processor) a minute past it, reversing the
    /// authorization the claim recorded.
    pub async fn expire_requires_action(&self) -> Result<usize, Error> {
        let now = self.now();
        let mut n = 0;
        for (status, grace_ms) in [
            (PaymentStatus::RequiresAction, 0),
            (PaymentStatus::Confirming, CLAIM_GRACE_MS),
        ] {
            let mut after = None;
            loop {
                let batch = self
                    .store
                    .waiting_payments(status.as_str(), after.take(), SWEEP_BATCH)
                    .await?;
                let full = batch.len() as i64 == SWEEP_BATCH;
                after = batch.last().map(|p| (p.created_at, p.id.clone()));
                n += self.sweep(batch, status, grace_ms, now).await?;
                if !full {
                    break;
                }
            }
        }
        Ok(n)
    }

    /// End the due payments of one batch; how many it ended.
    async fn sweep(
        &self,
        waiting: Vec<Payment>,
        status: PaymentStatus,
        grace_ms: i64,
        now: Timestamp,
    ) -> Result<usize, Error> {
        let mut n = 0;
        for pay in waiting {
            let expires = pay
                .details
                .next_action
                .as_ref()
                .map_or(0, |a| a.expires_at_ms);
            if now.unix_millis() < expires.saturating_add(grace_ms) {
                continue;
            }
            if !self.cancel_waiting(&pay, status, "expired").await? {
                continue;
            }
            n += 1;
            // Canceled by us: whatever the claim authorized goes back.
            if status == PaymentStatus::Confirming {
                let mut funding = pay.details.funding.clone();
                self.release_funds(&mut funding).await;
            }
        }
        Ok(n)
    }
}

/// Waiting payments read at a time by the sweeper, which walks them all.
const SWEEP_BATCH: i64 = 200;

/// How long past its deadline a `confirming` claim is left to its
/// confirmation before the sweeper ends it.
const CLAIM_GRACE_MS: i64 = 60_000;
