//! qrgate-store: where money movements are made durable.
//!
//! One [`Store`] trait, two implementations on sqlx: [`SqliteStore`] (the
//! embedded default, a file created on first start) and [`PgStore`]
//! (PostgreSQL, for production and many gateway nodes). The logic is written
//! once ([`ops`](crate::ops) over a small connection trait); the dialects
//! differ only in how transactions are run. Migrations for both live in
//! `migrations/sqlite` and `migrations/postgres` with the same numbers and
//! names and are applied when the store opens.

mod audit;
mod db;
pub mod error;
mod migrate;
pub mod model;
mod ops;
mod postgres;
mod sqlite;

use std::future::Future;

pub use audit::sha256_hex;
pub use error::{MovementError, StoreError};
pub use migrate::MigrationReport;
pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use qrgate_core::Timestamp;

/// Everything the payment flows persist. Implemented by [`SqliteStore`],
/// [`PgStore`], and [`AnyStore`] (whichever the URL names).
pub trait Store: Send + Sync + 'static {
    /// "sqlite" or "postgres".
    fn kind(&self) -> &'static str;
    /// Apply a money movement atomically (see [`Movement`]).
    fn apply(&self, m: Movement) -> impl Future<Output = Result<Applied, MovementError>> + Send;
    fn create_account(&self, a: Account) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn account(&self, id: &str)
    -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;
    fn accounts_of(
        &self,
        owner_id: &str,
    ) -> impl Future<Output = Result<Vec<Account>, StoreError>> + Send;
    fn payment(&self, id: &str)
    -> impl Future<Output = Result<Option<Payment>, StoreError>> + Send;
    fn refunds(
        &self,
        payment_id: &str,
    ) -> impl Future<Output = Result<Vec<Refund>, StoreError>> + Send;
    /// (amount, uses) charged to a counter so far.
    fn counter(&self, key: &str) -> impl Future<Output = Result<(i64, i64), StoreError>> + Send;
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
    /// Delete burned codes that expired before `before` (they can no longer verify anyway).
    fn purge_used_codes(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn outbox_pending(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, StoreError>> + Send;
    fn outbox_mark_delivered(
        &self,
        seq: i64,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn audit_rows(
        &self,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AuditRow>, StoreError>> + Send;
    fn verify_audit(&self) -> impl Future<Output = Result<AuditVerdict, StoreError>> + Send;
    fn ledger_check(&self) -> impl Future<Output = Result<LedgerCheck, StoreError>> + Send;
    fn load_keys(&self) -> impl Future<Output = Result<Vec<StoredKey>, StoreError>> + Send;
    fn save_keys(
        &self,
        keys: Vec<StoredKey>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Readiness: the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

macro_rules! read_via {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {{
        let mut c = $self.read().await?;
        ops::$f(&mut *c $(, $arg)*).await
    }};
}

impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }
    async fn apply(&self, m: Movement) -> Result<Applied, MovementError> {
        SqliteStore::apply(self, m).await
    }
    async fn create_account(&self, a: Account) -> Result<(), StoreError> {
        SqliteStore::create_account(self, a).await
    }
    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        read_via!(self, account(id))
    }
    async fn accounts_of(&self, owner_id: &str) -> Result<Vec<Account>, StoreError> {
        read_via!(self, accounts_of(owner_id))
    }
    async fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        read_via!(self, payment(id))
    }
    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, StoreError> {
        read_via!(self, refunds_of(payment_id))
    }
    async fn counter(&self, key: &str) -> Result<(i64, i64), StoreError> {
        read_via!(self, counter(key))
    }
    async fn idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        read_via!(self, idempotency(scope, key))
    }
    async fn purge_idempotency(&self, before: Timestamp) -> Result<u64, StoreError> {
        SqliteStore::purge_idempotency(self, before).await
    }
    async fn purge_used_codes(&self, before: Timestamp) -> Result<u64, StoreError> {
        SqliteStore::purge_used_codes(self, before).await
    }
    async fn outbox_pending(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        read_via!(self, outbox_pending(limit))
    }
    async fn outbox_mark_delivered(&self, seq: i64, at: Timestamp) -> Result<bool, StoreError> {
        SqliteStore::outbox_mark_delivered(self, seq, at).await
    }
    async fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        read_via!(self, audit_rows(after, limit))
    }
    async fn verify_audit(&self) -> Result<AuditVerdict, StoreError> {
        read_via!(self, verify_audit())
    }
    async fn ledger_check(&self) -> Result<LedgerCheck, StoreError> {
        read_via!(self, ledger_check())
    }
    async fn load_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        read_via!(self, load_keys())
    }
    async fn save_keys(&self, keys: Vec<StoredKey>) -> Result<(), StoreError> {
        SqliteStore::save_keys(self, keys).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        read_via!(self, ledger_ping())
    }
}

macro_rules! pg_via {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {{
        let mut c = $self.conn().await?;
        ops::$f(&mut *c $(, $arg)*).await
    }};
}

impl Store for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }
    async fn apply(&self, m: Movement) -> Result<Applied, MovementError> {
        PgStore::apply(self, m).await
    }
    async fn create_account(&self, a: Account) -> Result<(), StoreError> {
        pg_via!(self, create_account(&a))
    }
    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        pg_via!(self, account(id))
    }
    async fn accounts_of(&self, owner_id: &str) -> Result<Vec<Account>, StoreError> {
        pg_via!(self, accounts_of(owner_id))
    }
    async fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        pg_via!(self, payment(id))
    }
    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, StoreError> {
        pg_via!(self, refunds_of(payment_id))
    }
    async fn counter(&self, key: &str) -> Result<(i64, i64), StoreError> {
        pg_via!(self, counter(key))
    }
    async fn idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        pg_via!(self, idempotency(scope, key))
    }
    async fn purge_idempotency(&self, before: Timestamp) -> Result<u64, StoreError> {
        pg_via!(self, purge_idempotency(before))
    }
    async fn purge_used_codes(&self, before: Timestamp) -> Result<u64, StoreError> {
        pg_via!(self, purge_used_codes(before))
    }
    async fn outbox_pending(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        pg_via!(self, outbox_pending(limit))
    }
    async fn outbox_mark_delivered(&self, seq: i64, at: Timestamp) -> Result<bool, StoreError> {
        pg_via!(self, outbox_mark_delivered(seq, at))
    }
    async fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        pg_via!(self, audit_rows(after, limit))
    }
    async fn verify_audit(&self) -> Result<AuditVerdict, StoreError> {
        // One snapshot for the whole walk, so rows appended meanwhile cannot
        // make the head and the chain disagree.
        let mut c = self.conn().await?;
        let mut tx = sqlx::Connection::begin(&mut *c).await?;
        db::Conn::exec(
            &mut *tx,
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
            &[],
        )
        .await?;
        let v = ops::verify_audit(&mut *tx).await;
        tx.rollback().await.ok();
        v
    }
    async fn ledger_check(&self) -> Result<LedgerCheck, StoreError> {
        let mut c = self.conn().await?;
        let mut tx = sqlx::Connection::begin(&mut *c).await?;
        db::Conn::exec(
            &mut *tx,
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
            &[],
        )
        .await?;
        let v = ops::ledger_check(&mut *tx).await;
        tx.rollback().await.ok();
        v
    }
    async fn load_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        pg_via!(self, load_keys())
    }
    async fn save_keys(&self, keys: Vec<StoredKey>) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let mut tx = sqlx::Connection::begin(&mut *c).await?;
        ops::save_keys(&mut *tx, &keys).await?;
        tx.commit().await?;
        Ok(())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        pg_via!(self, ledger_ping())
    }
}

/// The store a URL names: `sqlite://PATH` or `postgres://…`.
#[derive(Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl AnyStore {
    /// Open and migrate. `sqlite://qrgate.db` creates the file on first start.
    pub async fn open(
        url: &str,
        now: Timestamp,
    ) -> Result<(AnyStore, MigrationReport), StoreError> {
        if url.starts_with("sqlite:") {
            let (s, r) = SqliteStore::open(url, now).await?;
            Ok((AnyStore::Sqlite(s), r))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (s, r) = PgStore::open(url, None, 16, now).await?;
            Ok((AnyStore::Postgres(s), r))
        } else {
            Err(StoreError::BadUrl {
                url: url.into(),
                why: "expected sqlite://PATH or postgres://USER@HOST/DB".into(),
            })
        }
    }
}

macro_rules! any_via {
    ($self:ident . $f:ident ( $($arg:expr),* )) => {
        match $self {
            AnyStore::Sqlite(s) => Store::$f(s $(, $arg)*).await,
            AnyStore::Postgres(s) => Store::$f(s $(, $arg)*).await,
        }
    };
}

impl Store for AnyStore {
    fn kind(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(s) => s.kind(),
            AnyStore::Postgres(s) => s.kind(),
        }
    }
    async fn apply(&self, m: Movement) -> Result<Applied, MovementError> {
        any_via!(self.apply(m))
    }
    async fn create_account(&self, a: Account) -> Result<(), StoreError> {
        any_via!(self.create_account(a))
    }
    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        any_via!(self.account(id))
    }
    async fn accounts_of(&self, owner_id: &str) -> Result<Vec<Account>, StoreError> {
        any_via!(self.accounts_of(owner_id))
    }
    async fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        any_via!(self.payment(id))
    }
    async fn refunds(&self, payment_id: &str) -> Result<Vec<Refund>, StoreError> {
        any_via!(self.refunds(payment_id))
    }
    async fn counter(&self, key: &str) -> Result<(i64, i64), StoreError> {
        any_via!(self.counter(key))
    }
    async fn idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        any_via!(self.idempotency(scope, key))
    }
    async fn purge_idempotency(&self, before: Timestamp) -> Result<u64, StoreError> {
        any_via!(self.purge_idempotency(before))
    }
    async fn purge_used_codes(&self, before: Timestamp) -> Result<u64, StoreError> {
        any_via!(self.purge_used_codes(before))
    }
    async fn outbox_pending(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        any_via!(self.outbox_pending(limit))
    }
    async fn outbox_mark_delivered(&self, seq: i64, at: Timestamp) -> Result<bool, StoreError> {
        any_via!(self.outbox_mark_delivered(seq, at))
    }
    async fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        any_via!(self.audit_rows(after, limit))
    }
    async fn verify_audit(&self) -> Result<AuditVerdict, StoreError> {
        any_via!(self.verify_audit())
    }
    async fn ledger_check(&self) -> Result<LedgerCheck, StoreError> {
        any_via!(self.ledger_check())
    }
    async fn load_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        any_via!(self.load_keys())
    }
    async fn save_keys(&self, keys: Vec<StoredKey>) -> Result<(), StoreError> {
        any_via!(self.save_keys(keys))
    }
    async fn ping(&self) -> Result<(), StoreError> {
        any_via!(self.ping())
    }
}
