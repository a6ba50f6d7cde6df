//! qrgate-store: where money movements are made durable.
//!
//! One [`Store`] trait, two implementations: [`SqliteStore`] (the embedded
//! default on rusqlite, a file created on first start) and [`PgStore`]
//! (PostgreSQL on sqlx, for production and many gateway nodes);
//! [`AnyStore`] is whichever a URL names. The statements are written once,
//! over a small connection trait (`db::Conn`), except a movement's, which
//! PostgreSQL can also run composed into one statement
//! (`one_statement.rs`); the two differ in how transactions run: SQLite
//! through one group-committing writer thread, PostgreSQL through a pool
//! with retries. Migrations for both live in `migrations/sqlite` and
//! `migrations/postgres` with the same numbers and names and are applied when
//! the store opens.

mod any;
mod audit;
mod books;
mod complaints;
mod db;
pub mod error;
mod events;
mod lite;
mod migrate;
pub mod model;
mod money;
mod one_statement;
mod ops;
mod postgres;
mod sqlite;
mod steps;
mod web;
mod write;

use std::future::Future;

pub use any::{AnyStore, WriteStats, redact_url};
pub use audit::sha256_hex;
pub use complaints::ComplaintStore;
pub use error::{CapUnit, MovementError, StoreError};
pub use events::EventStore;
pub use migrate::MigrationReport;
pub use model::*;
pub use money::MoneyStore;
pub use ops::{CardMovement, CardMovementPage, FundRow, StatementPage, TradeRow};
pub use postgres::{MovementPaths, PgStore};
pub use sqlite::{GroupCommits, SqliteStore};
pub use web::WebStore;

use qrgate_core::{AccountId, CounterKey, Timestamp};

/// Everything the payment flows persist.
pub trait Store:
    MoneyStore + EventStore + ComplaintStore + WebStore + Clone + Send + Sync + 'static
{
    /// "sqlite" or "postgres".
    fn kind(&self) -> &'static str;
    /// Apply a money movement atomically (see [`Movement`]).
    fn apply(&self, m: Movement) -> impl Future<Output = Result<Applied, MovementError>> + Send;
    /// Write a row that is written once (account, merchant, API key, …).
    fn insert(&self, r: Record) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn account(
        &self,
        id: &AccountId,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;
    /// The accounts of these ids that exist, read together (one statement,
    /// so a movement between them is seen whole or not at all), by id.
    fn accounts(
        &self,
        ids: &[AccountId],
    ) -> impl Future<Output = Result<Vec<Account>, StoreError>> + Send;
    fn payment(&self, id: &str)
    -> impl Future<Output = Result<Option<Payment>, StoreError>> + Send;
    fn list_payments(
        &self,
        q: PaymentQuery,
    ) -> impl Future<Output = Result<(Vec<Payment>, bool), StoreError>> + Send;
    /// Payments in the waiting status `status` (`requires_action` or
    /// `confirming`), oldest first, after the cursor `(created_at, id)` of
    /// the last one of the previous batch: the step-up sweeper's walk.
    fn waiting_payments(
        &self,
        status: &str,
        after: Option<(Timestamp, String)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Payment>, StoreError>> + Send;
    fn refunds(
        &self,
        payment_id: &str,
    ) -> impl Future<Output = Result<Vec<Refund>, StoreError>> + Send;
    fn refund(&self, id: &str) -> impl Future<Output = Result<Option<Refund>, StoreError>> + Send;
    /// A page of refunds, newest first, and whether there are more.
    fn list_refunds(
        &self,
        q: RefundQuery,
    ) -> impl Future<Output = Result<(Vec<Refund>, bool), StoreError>> + Send;
    /// (amount, uses) charged to a counter so far.
    fn counter(
        &self,
        key: &CounterKey,
    ) -> impl Future<Output = Result<(i64, i64), StoreError>> + Send;
    fn idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
    /// Delete idempotency records created before `before` (keep at least 24 h).
    fn purge_idempotency(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Delete burned codes and issued numeric codes that expired before
    /// `before` (they no longer verify anyway); how many rows went.
    fn purge_codes(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Take or renew the lease of a periodic job until `until`.
    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Audit rows after `after` (queued entries are chained first).
    fn audit_rows(
        &self,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AuditRow>, StoreError>> + Send;
    /// PostgreSQL: chain every queued audit entry (passes of up to 1,000);
    /// the number chained. SQLite chains each entry with its movement: 0,
    /// without a trip to the writer.
    fn chain_audit(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Walk the audit chain in one snapshot and name the first broken row
    /// (queued entries are chained first).
    fn verify_audit(&self) -> impl Future<Output = Result<AuditVerdict, StoreError>> + Send;
    /// Check the ledger balances, in one snapshot.
    fn ledger_check(&self) -> impl Future<Output = Result<LedgerCheck, StoreError>> + Send;
    fn load_keys(&self) -> impl Future<Output = Result<Vec<StoredKey>, StoreError>> + Send;
    /// A secret of the gateway itself by name (as stored: sealed).
    fn gateway_secret(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Add a secret of the gateway unless one of that name exists.
    fn add_gateway_secret(
        &self,
        name: &str,
        value: String,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Every stored secret, as stored (see [`SecretSlot`]).
    fn secret_rows(&self) -> impl Future<Output = Result<Vec<SecretRow>, StoreError>> + Send;
    /// Replace a stored secret (re-sealing it) while it is still as read.
    fn replace_secret(
        &self,
        row: SecretRow,
        value: String,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Change the signing keys (with an audit entry when given); see
    /// [`KeyChange`].
    fn change_keys(
        &self,
        change: KeyChange,
        at: Timestamp,
        audit: Option<AuditEntry>,
    ) -> impl Future<Output = Result<bool, MovementError>> + Send;
    fn merchant(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Merchant>, StoreError>> + Send;
    fn customer(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Customer>, StoreError>> + Send;
    fn device(&self, id: &str) -> impl Future<Output = Result<Option<Device>, StoreError>> + Send;
    fn devices_of(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Vec<Device>, StoreError>> + Send;
    /// Blocks in force on either party (merchant id, customer id).
    fn active_blocks(
        &self,
        a: &str,
        b: &str,
    ) -> impl Future<Output = Result<Vec<Block>, StoreError>> + Send;
    /// The parties (merchant or customer ids) with a block in force, at
    /// most `limit` of them, in id order.
    fn blocked_subjects(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    fn block(&self, id: &str) -> impl Future<Output = Result<Option<Block>, StoreError>> + Send;
    /// Lift a block in force, with its audit row; false when none has that id.
    fn lift_block(
        &self,
        id: &str,
        at: Timestamp,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A customer's enrolled certificates, oldest first.
    fn certificates_of(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Vec<Certificate>, StoreError>> + Send;
    /// A customer's TOTP enrollment in force (the newest), if any.
    fn otp_enrollment(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Option<OtpEnrollment>, StoreError>> + Send;
    /// A customer's succeeded payments since `since`: (count, total minor units).
    fn payer_history(
        &self,
        customer_id: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<(i64, i64), StoreError>> + Send;
    /// How many distinct customers paid a merchant since `since`.
    fn distinct_payers(
        &self,
        merchant_id: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// A customer's linked cards, oldest first.
    fn cards_of(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Vec<Card>, StoreError>> + Send;
    fn api_key_by_hash(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;
    /// Revoke a key that is active, with its audit row; false when none is.
    fn revoke_api_key(
        &self,
        id: &str,
        at: Timestamp,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Whether an unrevoked key with this role exists.
    fn has_active_key(&self, role: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn static_code(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<StaticCode>, StoreError>> + Send;
    /// How many of a merchant's payments succeeded in `[from, to)` and what
    /// they added up to (before refunds), in minor units.
    fn payment_totals(
        &self,
        merchant_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<(i64, i64), StoreError>> + Send;
    /// A merchant's static codes, newest first, at most `limit`.
    fn static_codes_of(
        &self,
        merchant_id: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StaticCode>, StoreError>> + Send;
    fn order(&self, id: &str) -> impl Future<Output = Result<Option<Order>, StoreError>> + Send;
    /// A merchant's order by its own number.
    fn order_by_number(
        &self,
        merchant_id: &str,
        out_trade_no: &str,
    ) -> impl Future<Output = Result<Option<Order>, StoreError>> + Send;
    /// Static codes not revoked and open orders not expired at `now`.
    fn codes_in_force(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<(Vec<StaticCode>, Vec<Order>), StoreError>> + Send;
    fn orders_due(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Order>, StoreError>> + Send;
    fn issued_code(
        &self,
        code: &str,
    ) -> impl Future<Output = Result<Option<IssuedCode>, StoreError>> + Send;
    /// Readiness: the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Change a credential (PIN, device, certificate, static code) with
    /// its audit entry; `false` when there was nothing to change.
    fn change_credential(
        &self,
        change: CredentialChange,
        at: Timestamp,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn credentials(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Option<Credentials>, StoreError>> + Send;
    /// Take a PIN attempt before checking it (counted as a failure until
    /// [`Store::pin_succeeded`]); `None` while locked. The failures so far
    /// and the lock this attempt set, if it reached `lock_after`.
    fn pin_attempt(
        &self,
        customer_id: &str,
        at: Timestamp,
        lock_after: i64,
        locked_until: Timestamp,
    ) -> impl Future<Output = Result<Option<(i64, Option<Timestamp>)>, StoreError>> + Send;
    fn pin_succeeded(
        &self,
        customer_id: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Give back one attempt taken for a PIN that was right (a step-up
    /// for a credential change): one failure fewer, and the lock-out lifted
    /// when `lift_lock` (that attempt is the one that set it; no later try
    /// can have set another, since a lock refuses tries). Unlike
    /// [`Store::pin_succeeded`], earlier failures stay counted.
    fn pin_refund(
        &self,
        customer_id: &str,
        at: Timestamp,
        lift_lock: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

fn store_err(e: MovementError) -> StoreError {
    match e {
        MovementError::Store(s) => s,
        other => StoreError::Corrupt(other.to_string()),
    }
}

/// The method bodies are the same for every store: reads on a reader
/// connection, writes through the store's `write`.
macro_rules! impl_store {
    ($ty:ty, $kind:expr) => {
        impl Store for $ty {
            fn kind(&self) -> &'static str {
                $kind(self)
            }
            async fn apply(&self, m: Movement) -> Result<Applied, MovementError> {
                self.apply(write::Prepared::new(m)).await
            }
            async fn insert(&self, r: Record) -> Result<(), StoreError> {
                self.write(write::Insert(r)).await.map_err(store_err)
            }
            async fn account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
                ops::account(&mut self.reader().await?, id.as_str()).await
            }
            async fn accounts(&self, ids: &[AccountId]) -> Result<Vec<Account>, StoreError> {
                ops::accounts(&mut self.reader().await?, ids).await
            }
            async fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError> {
                ops::payment(&mut self.reader().await?, id).await
            }
            async fn list_payments(
                &self,
                q: PaymentQuery,
            ) -> Result<(Vec<Payment>, bool), StoreError> {
                ops::list_payments(&mut self.reader().await?, &q).await
            }
            async fn waiting_payments(
                &self,
                status: &str,
                after: Option<(Timestamp, String)>,
                limit: i64,
            ) -> Result<Vec<Payment>, StoreError> {
                ops::waiting_payments(&mut self.reader().await?, status, after, limit).await
            }
            async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, StoreError> {
                ops::refunds_of(&mut self.reader().await?, payment_id).await
            }
            async fn refund(&self, id: &str) -> Result<Option<Refund>, StoreError> {
                ops::refund(&mut self.reader().await?, id).await
            }
            async fn list_refunds(
                &self,
                q: RefundQuery,
            ) -> Result<(Vec<Refund>, bool), StoreError> {
                ops::list_refunds(&mut self.reader().await?, &q).await
            }
            async fn counter(&self, key: &CounterKey) -> Result<(i64, i64), StoreError> {
                ops::counter(&mut self.reader().await?, key.as_str()).await
            }
            async fn idempotency(
                &self,
                scope: &str,
                key: &str,
            ) -> Result<Option<IdempotencyRecord>, StoreError> {
                ops::idempotency(&mut self.reader().await?, scope, key).await
            }
            async fn purge_idempotency(&self, before: Timestamp) -> Result<u64, StoreError> {
                self.write(write::PurgeIdempotency(before))
                    .await
                    .map_err(store_err)
            }
            async fn purge_codes(&self, before: Timestamp) -> Result<u64, StoreError> {
                self.write(write::PurgeCodes(before))
                    .await
                    .map_err(store_err)
            }
            async fn take_lease(
                &self,
                name: &str,
                holder: &str,
                now: Timestamp,
                until: Timestamp,
            ) -> Result<bool, StoreError> {
                self.write(write::TakeLease {
                    name: name.to_owned(),
                    holder: holder.to_owned(),
                    now,
                    until,
                })
                .await
                .map_err(store_err)
            }
            async fn audit_rows(
                &self,
                after: i64,
                limit: i64,
            ) -> Result<Vec<AuditRow>, StoreError> {
                chain_before_reading(self).await;
                ops::audit_rows(&mut self.reader().await?, after, limit).await
            }
            async fn chain_audit(&self) -> Result<u64, StoreError> {
                if self.kind() == "sqlite" {
                    return Ok(0);
                }
                let mut total = 0;
                loop {
                    let n = self.write(write::ChainAudit).await.map_err(store_err)?;
                    total += n;
                    if n < ops::CHAIN_BATCH as u64 {
                        return Ok(total);
                    }
                }
            }
            async fn verify_audit(&self) -> Result<AuditVerdict, StoreError> {
                chain_before_reading(self).await;
                let mut c = self.reader().await?;
                ops::in_snapshot(&mut c, async |c| ops::verify_audit(c).await).await
            }
            async fn ledger_check(&self) -> Result<LedgerCheck, StoreError> {
                let mut c = self.reader().await?;
                ops::in_snapshot(&mut c, async |c| books::ledger_check(c).await).await
            }
            async fn load_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
                ops::load_keys(&mut self.reader().await?).await
            }
            async fn gateway_secret(&self, name: &str) -> Result<Option<String>, StoreError> {
                ops::gateway_secret(&mut self.reader().await?, name).await
            }
            async fn add_gateway_secret(
                &self,
                name: &str,
                value: String,
                at: Timestamp,
            ) -> Result<bool, StoreError> {
                let name = name.to_owned();
                self.write(write::AddGatewaySecret { name, value, at })
                    .await
                    .map_err(store_err)
            }
            async fn secret_rows(&self) -> Result<Vec<SecretRow>, StoreError> {
                ops::secret_rows(&mut self.reader().await?).await
            }
            async fn replace_secret(
                &self,
                row: SecretRow,
                value: String,
            ) -> Result<bool, StoreError> {
                self.write(write::ReplaceSecret { row, value })
                    .await
                    .map_err(store_err)
            }
            async fn change_keys(
                &self,
                change: KeyChange,
                at: Timestamp,
                audit: Option<AuditEntry>,
            ) -> Result<bool, MovementError> {
                let change = write::ChangeKeys(change);
                self.write(write::Audited { change, at, audit }).await
            }
            async fn merchant(&self, id: &str) -> Result<Option<Merchant>, StoreError> {
                ops::merchant(&mut self.reader().await?, id).await
            }
            async fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
                ops::customer(&mut self.reader().await?, id).await
            }
            async fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
                ops::device(&mut self.reader().await?, id).await
            }
            async fn devices_of(&self, customer_id: &str) -> Result<Vec<Device>, StoreError> {
                ops::devices_of(&mut self.reader().await?, customer_id).await
            }
            async fn active_blocks(&self, a: &str, b: &str) -> Result<Vec<Block>, StoreError> {
                ops::active_blocks(&mut self.reader().await?, a, b).await
            }
            async fn blocked_subjects(&self, limit: i64) -> Result<Vec<String>, StoreError> {
                ops::blocked_subjects(&mut self.reader().await?, limit).await
            }
            async fn block(&self, id: &str) -> Result<Option<Block>, StoreError> {
                ops::block(&mut self.reader().await?, id).await
            }
            async fn lift_block(
                &self,
                id: &str,
                at: Timestamp,
                audit: AuditEntry,
            ) -> Result<bool, StoreError> {
                let change = write::LiftBlock {
                    id: id.to_owned(),
                    at,
                };
                let audit = Some(audit);
                self.write(write::Audited { change, at, audit })
                    .await
                    .map_err(store_err)
            }
            async fn certificates_of(
                &self,
                customer_id: &str,
            ) -> Result<Vec<Certificate>, StoreError> {
                ops::certificates_of(&mut self.reader().await?, customer_id).await
            }
            async fn otp_enrollment(
                &self,
                customer_id: &str,
            ) -> Result<Option<OtpEnrollment>, StoreError> {
                ops::otp_enrollment(&mut self.reader().await?, customer_id).await
            }
            async fn payer_history(
                &self,
                customer_id: &str,
                since: Timestamp,
            ) -> Result<(i64, i64), StoreError> {
                ops::payer_history(&mut self.reader().await?, customer_id, since).await
            }
            async fn distinct_payers(
                &self,
                merchant_id: &str,
                since: Timestamp,
            ) -> Result<i64, StoreError> {
                ops::distinct_payers(&mut self.reader().await?, merchant_id, since).await
            }
            async fn cards_of(&self, customer_id: &str) -> Result<Vec<Card>, StoreError> {
                ops::cards_of(&mut self.reader().await?, customer_id).await
            }
            async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
                ops::api_key_by_hash(&mut self.reader().await?, hash).await
            }
            async fn revoke_api_key(
                &self,
                id: &str,
                at: Timestamp,
                audit: AuditEntry,
            ) -> Result<bool, StoreError> {
                let change = write::RevokeApiKey {
                    id: id.to_owned(),
                    at,
                };
                let audit = Some(audit);
                self.write(write::Audited { change, at, audit })
                    .await
                    .map_err(store_err)
            }
            async fn has_active_key(&self, role: &str) -> Result<bool, StoreError> {
                ops::has_active_key(&mut self.reader().await?, role).await
            }
            async fn static_code(&self, id: &str) -> Result<Option<StaticCode>, StoreError> {
                ops::static_code(&mut self.reader().await?, id).await
            }
            async fn payment_totals(
                &self,
                merchant_id: &str,
                from: Timestamp,
                to: Timestamp,
            ) -> Result<(i64, i64), StoreError> {
                ops::payment_totals(&mut self.reader().await?, merchant_id, from, to).await
            }
            async fn static_codes_of(
                &self,
                merchant_id: &str,
                limit: i64,
            ) -> Result<Vec<StaticCode>, StoreError> {
                ops::static_codes_of(&mut self.reader().await?, merchant_id, limit).await
            }
            async fn order_by_number(
                &self,
                merchant_id: &str,
                out_trade_no: &str,
            ) -> Result<Option<Order>, StoreError> {
                ops::order_by_number(&mut self.reader().await?, merchant_id, out_trade_no).await
            }
            async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
                ops::order(&mut self.reader().await?, id).await
            }
            async fn codes_in_force(
                &self,
                now: Timestamp,
            ) -> Result<(Vec<StaticCode>, Vec<Order>), StoreError> {
                ops::codes_in_force(&mut self.reader().await?, now).await
            }
            async fn orders_due(
                &self,
                now: Timestamp,
                limit: i64,
            ) -> Result<Vec<Order>, StoreError> {
                ops::orders_due(&mut self.reader().await?, now, limit).await
            }
            async fn issued_code(&self, code: &str) -> Result<Option<IssuedCode>, StoreError> {
                ops::issued_code(&mut self.reader().await?, code).await
            }
            async fn ping(&self) -> Result<(), StoreError> {
                ops::ledger_ping(&mut self.reader().await?).await
            }
            async fn change_credential(
                &self,
                change: CredentialChange,
                at: Timestamp,
                audit: AuditEntry,
            ) -> Result<bool, StoreError> {
                let change = write::ChangeCredential { change, at };
                let audit = Some(audit);
                self.write(write::Audited { change, at, audit })
                    .await
                    .map_err(store_err)
            }
            async fn credentials(
                &self,
                customer_id: &str,
            ) -> Result<Option<Credentials>, StoreError> {
                ops::credentials(&mut self.reader().await?, customer_id).await
            }
            async fn pin_attempt(
                &self,
                customer_id: &str,
                at: Timestamp,
                lock_after: i64,
                locked_until: Timestamp,
            ) -> Result<Option<(i64, Option<Timestamp>)>, StoreError> {
                self.write(write::PinAttempt {
                    customer_id: customer_id.to_owned(),
                    at,
                    lock_after,
                    locked_until,
                })
                .await
                .map_err(store_err)
            }
            async fn pin_succeeded(
                &self,
                customer_id: &str,
                at: Timestamp,
            ) -> Result<(), StoreError> {
                let customer_id = customer_id.to_owned();
                self.write(write::PinSucceeded { customer_id, at })
                    .await
                    .map_err(store_err)
            }
            async fn pin_refund(
                &self,
                customer_id: &str,
                at: Timestamp,
                lift_lock: bool,
            ) -> Result<(), StoreError> {
                let customer_id = customer_id.to_owned();
                self.write(write::PinRefund {
                    customer_id,
                    at,
                    lift_lock,
                })
                .await
                .map_err(store_err)
            }
        }
    };
}

/// Chain every queued audit entry before the log is read, so a reader sees
/// each entry whose movement committed before it asked. A failure is only
/// logged: the read then shows the chain as far as it goes.
async fn chain_before_reading<S: Store>(s: &S) {
    if let Err(e) = s.chain_audit().await {
        tracing::warn!(error = %e, "could not chain queued audit entries");
    }
}

impl_store!(SqliteStore, |_| "sqlite");
impl_store!(PgStore, |_| "postgres");
impl_store!(AnyStore, |s: &AnyStore| match s {
    AnyStore::Sqlite(_) => "sqlite",
    AnyStore::Postgres(_) => "postgres",
});
