//! The background work of a running node: what no request triggers but the
//! rules need done on time. Every job is safe to run on many nodes at once
//! (each change it makes is a conditional write or a claim).
//!
//! - every second: open orders past their expiry close, waiting step-ups
//!   past their deadline lapse (and claims left by a stopped node end);
//! - every 2 s: complaints past their deadlines move on (under the
//!   `complaints` lease: escalated, accepted by a silent payer, final);
//! - every 2 s: the signing keys are re-read, so a rotation or retirement
//!   made elsewhere is in force here;
//! - every 10 minutes: idempotency records past their keeping time and
//!   burned or issued codes past their expiry are deleted;
//! - every 100 ms (PostgreSQL): queued audit entries are chained;
//! - every 500 ms: webhook dispatch passes, up to [`WEBHOOK_PASSES`] at
//!   once, so one waiting on a slow endpoint does not hold up the others;
//! - every 30 s: once yesterday is over (and a delay has passed), its
//!   settlement and payouts for every merchant, under a lease so one node
//!   runs it; and payouts due for a retry, and those the bank sent back.

use std::sync::Arc;
use std::time::Duration;

use qrgate_store::Store;
use tokio::task::JoinHandle;

use crate::Gateway;
use crate::webhooks::Sender;

/// Webhook dispatch passes that may run at once on one node.
pub const WEBHOOK_PASSES: usize = 4;

/// The running jobs; dropping it stops them.
pub struct Jobs(Vec<JoinHandle<()>>);

impl Drop for Jobs {
    fn drop(&mut self) {
        for job in &self.0 {
            job.abort();
        }
    }
}

impl<S: Store + 'static> Gateway<S> {
    /// Start this node's background jobs, sending webhooks with `sender`.
    pub fn start_jobs(self: &Arc<Self>, sender: Arc<impl Sender + 'static>) -> Jobs {
        Jobs(vec![
            tokio::spawn(sweeper(self.clone())),
            tokio::spawn(chainer(self.clone())),
            tokio::spawn(dispatcher(self.clone(), sender)),
            tokio::spawn(settler(self.clone())),
        ])
    }

    /// Delete what is past its keeping time: idempotency records (after
    /// QG-IDEMPOTENCY's hours) and codes a minute past their expiry.
    pub async fn purge(&self) {
        let now = self.now();
        let keep_ms = self.limits.idempotency_hours.saturating_mul(3_600_000);
        if let Some(before) = now.checked_add_millis(-keep_ms)
            && let Err(e) = self.store.purge_idempotency(before).await
        {
            tracing::warn!(error = %e, "purging idempotency records failed");
        }
        if let Some(before) = now.checked_add_millis(-60_000)
            && let Err(e) = self.store.purge_codes(before).await
        {
            tracing::warn!(error = %e, "purging expired codes failed");
        }
        // Ended and expired page sessions (their sign-ins are audited).
        if let Err(e) = self.store.purge_web_sessions(now).await {
            tracing::warn!(error = %e, "purging ended web sessions failed");
        }
    }
}

/// A node's name for a lease; a failed draw still names it uniquely
/// enough for a lease (its start time).
fn holder_name<S: Store>(gw: &Gateway<S>) -> String {
    let mut random = [0_u8; 8];
    match ring::rand::SecureRandom::fill(&gw.rng, &mut random) {
        Ok(()) => format!("node-{}", u64::from_le_bytes(random)),
        Err(_) => format!("node-{}", gw.now().unix_millis()),
    }
}

async fn settler<S: Store>(gw: Arc<Gateway<S>>) {
    let holder = holder_name(&gw);
    let mut done = None;
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        match gw.settle_due(&holder, done).await {
            Ok(d) => done = d,
            Err(e) => tracing::warn!(error = %e, "the daily settlement failed; it runs again"),
        }
        if let Err(e) = gw.payouts_step().await {
            tracing::warn!(error = %e, "the payouts' pass failed; it runs again");
        }
    }
}

async fn sweeper<S: Store>(gw: Arc<Gateway<S>>) {
    let holder = holder_name(&gw);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        // Complaints past their deadlines, under the `complaints` lease.
        if n.is_multiple_of(2) {
            match gw.complaints_step(&holder).await {
                Ok(0) => {}
                Ok(moved) => tracing::info!(moved, "complaints past their deadlines moved on"),
                Err(e) => {
                    tracing::warn!(error = %e, "the complaints' deadlines pass failed; it runs again")
                }
            }
        }
        if let Err(e) = gw.expire_orders().await {
            tracing::warn!(error = %e, "order expiry failed");
        }
        if let Err(e) = gw.expire_requires_action().await {
            tracing::warn!(error = %e, "step-up expiry failed");
        }
        if n.is_multiple_of(2)
            && let Err(e) = gw.reload_keys().await
        {
            tracing::warn!(error = %e, "reloading the signing keys failed");
        }
        n += 1;
        if n.is_multiple_of(600) {
            gw.purge().await;
        }
    }
}

/// PostgreSQL: chain the audit entries movements queued (a few ms after
/// their commit; reads of the audit log chain what is queued first).
async fn chainer<S: Store>(gw: Arc<Gateway<S>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if let Err(e) = gw.store.chain_audit().await {
            tracing::warn!(error = %e, "audit chaining failed; will retry");
        }
    }
}

async fn dispatcher<S: Store + 'static>(gw: Arc<Gateway<S>>, sender: Arc<impl Sender + 'static>) {
    let passes = Arc::new(tokio::sync::Semaphore::new(WEBHOOK_PASSES));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let Ok(permit) = passes.clone().try_acquire_owned() else {
            continue;
        };
        let (gw, sender) = (gw.clone(), sender.clone());
        tokio::spawn(async move {
            if let Err(e) = gw.dispatch_webhooks(sender.as_ref()).await {
                tracing::warn!(error = %e, "webhook dispatch failed");
            }
            drop(permit);
        });
    }
}
