//! Store errors: business refusals of a movement, and infrastructure failures.

use qrgate_core::state::PaymentStatus;
use qrgate_core::{AccountId, CounterKey, Currency};

/// The database could not do what was asked (connection, I/O, corruption).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable or busy; the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] DbError),
    #[error("migration {version} ({name}) {problem}")]
    Migration {
        version: i64,
        name: String,
        problem: String,
    },
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("invalid store URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
}

impl StoreError {
    /// Whether retrying the same operation later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(e) => e.is_transient(),
            _ => false,
        }
    }

    /// A unique key was taken (a row written once is there already).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(e) if e.is_unique_violation())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(DbError::Postgres(e))
    }
}

/// A statement failed, on either database. The store's own type: the SQLite
/// side reports its result codes as they are, instead of dressing them up
/// as sqlx errors, and the checks the store makes of a failure (can it be
/// retried, which of our triggers refused) are written once, here.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    /// A SQLite failure with its extended result code.
    #[error("SQLite: {message} (code {code})")]
    Sqlite { code: i32, message: String },
    /// Any other SQLite error (a misuse of its API, a bad parameter).
    #[error("SQLite: {0}")]
    SqliteOther(String),
    /// A column's value is not what the reader expected.
    #[error("column {column}: {problem}")]
    Decode { column: String, problem: String },
    /// The connection was given back to its pool before the statement ran.
    #[error("the connection has been returned to its pool")]
    Closed,
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(f, msg) => DbError::Sqlite {
                code: f.extended_code,
                message: msg.unwrap_or_else(|| f.to_string()),
            },
            other => DbError::SqliteOther(other.to_string()),
        }
    }
}

impl DbError {
    /// The database's own code: the SQLSTATE on PostgreSQL, the extended
    /// result code on SQLite.
    pub fn code(&self) -> Option<String> {
        match self {
            DbError::Postgres(sqlx::Error::Database(d)) => d.code().map(|c| c.into_owned()),
            DbError::Sqlite { code, .. } => Some(code.to_string()),
            _ => None,
        }
    }

    /// The database's message for a refused statement.
    fn message(&self) -> &str {
        match self {
            DbError::Postgres(sqlx::Error::Database(d)) => d.message(),
            DbError::Sqlite { message, .. } => message,
            _ => "",
        }
    }

    /// Serialization failures, deadlocks, lock timeouts and lost
    /// connections: the same statement may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Postgres(e) => is_transient(e),
            // BUSY, LOCKED, BUSY_RECOVERY, LOCKED_SHAREDCACHE, BUSY_SNAPSHOT.
            DbError::Sqlite { code, .. } => matches!(code, 5 | 6 | 261 | 262 | 517),
            _ => false,
        }
    }

    /// A unique key or primary key was taken.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Postgres(sqlx::Error::Database(d)) => {
                matches!(d.kind(), sqlx::error::ErrorKind::UniqueViolation)
            }
            // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY.
            DbError::Sqlite { code, .. } => matches!(code, 2067 | 1555),
            _ => false,
        }
    }

    /// Refused by one of the store's triggers or guards that raise
    /// `code` (a SQLSTATE of ours, `QG…`) on PostgreSQL, or whose message
    /// names `marker` on SQLite.
    pub(crate) fn raised(&self, code: &str, marker: &str) -> bool {
        self.code().as_deref() == Some(code) || self.message().contains(marker)
    }
}

/// Why a movement was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum MovementError {
    #[error("API key {key_id} was revoked")]
    ApiKeyRevoked { key_id: String },
    #[error("{subject_id} is blocked")]
    PartyBlocked { subject_id: String },
    #[error("idempotency key {key:?} was used before with a different request")]
    IdempotencyKeyReused { scope: String, key: String },
    #[error("code {key} was already used")]
    CodeAlreadyUsed { key: String },
    #[error("limit {rule} exceeded: counter {key} at {current} + {amount} is over {cap}")]
    LimitExceeded {
        rule: String,
        key: CounterKey,
        /// What the cap that stopped it counts.
        unit: CapUnit,
        current: i64,
        amount: i64,
        cap: i64,
    },
    /// The business day the movement falls in was settled: its entry on
    /// a merchant's pending account is refused (the caller retries, now
    /// in the next day).
    #[error("account {account_id} is settled up to {closed_until:?}")]
    DayClosed {
        account_id: AccountId,
        closed_until: qrgate_core::Timestamp,
    },
    /// A later business day of the merchant was settled first; days are
    /// settled in order.
    #[error("merchant {merchant_id} is settled up to {closed_until:?}, after {business_date}")]
    SettledLater {
        merchant_id: String,
        business_date: String,
        closed_until: qrgate_core::Timestamp,
    },
    #[error("account {account_id} has insufficient funds")]
    InsufficientFunds { account_id: AccountId },
    /// The balance would leave the range the ledger holds (a BIGINT of
    /// minor units); nothing moved.
    #[error("account {account_id} cannot hold the balance this movement would give it")]
    BalanceOverflow { account_id: AccountId },
    #[error("static code {code_id} is revoked")]
    CodeRevoked { code_id: String },
    #[error("static code {code_id} is suspended while reports of tampering are reviewed")]
    CodeSuspended { code_id: String },
    /// A suspension of a static code was asked for but fewer payers than
    /// the rule's number reported it (or it is suspended or revoked
    /// already); nothing was written.
    #[error("static code {code_id} is not due for suspension")]
    CodeNotSuspended { code_id: String },
    #[error("device {device_id} is revoked")]
    DeviceRevoked { device_id: String },
    #[error("the merchant already has {cap} webhook endpoints")]
    TooManyEndpoints { cap: i64 },
    #[error("account {account_id} does not exist")]
    UnknownAccount { account_id: AccountId },
    #[error("account {account_id} is in {account_currency}, the entry is in {entry_currency}")]
    CurrencyMismatch {
        account_id: AccountId,
        account_currency: Currency,
        entry_currency: Currency,
    },
    #[error("invalid movement: {0}")]
    Invalid(String),
    #[error("payment {id} does not exist")]
    PaymentNotFound { id: String },
    #[error("payment {id} is {actual}, not {expected}")]
    PaymentStateConflict {
        id: String,
        expected: PaymentStatus,
        actual: PaymentStatus,
    },
    #[error("payment {id} has {refunded_minor} refunded, so its status cannot change")]
    PaymentHasRefunds { id: String, refunded_minor: i64 },
    #[error("order {id} does not exist")]
    OrderNotFound { id: String },
    #[error("order {id} is {actual}, not {expected}")]
    OrderStateConflict {
        id: String,
        expected: String,
        actual: String,
    },
    #[error("payment {id} already exists")]
    DuplicatePayment { id: String },
    #[error("out_trade_no {out_trade_no:?} is already used by this merchant")]
    DuplicateOutTradeNo { out_trade_no: String },
    #[error("payment {id} was refunded meanwhile ({refunded_minor} now): read it again")]
    RefundedMeanwhile { id: String, refunded_minor: i64 },
    #[error("refund would exceed the captured amount of payment {id}")]
    RefundExceedsCaptured { id: String },
    #[error("out_refund_no {out_refund_no:?} is already used by this merchant")]
    DuplicateRefundNo { out_refund_no: String },
    /// The payment has a complaint that is not resolved.
    #[error("payment {payment_id} already has an unresolved complaint")]
    ComplaintOpen { payment_id: String },
    /// A party's move after its deadline: the complaint is as it was read,
    /// but its `due_at` has passed.
    #[error("complaint {id} was due by {due_at:?}")]
    ComplaintPastDue {
        id: String,
        due_at: qrgate_core::Timestamp,
    },
    /// A refund in the complaint while an earlier one of it is not yet
    /// confirmed by the card processor.
    #[error("complaint {id} has refund {refund} not yet confirmed by the processor")]
    ComplaintRefundPending { id: String, refund: String },
    /// The complaint moved on since it was read (`actual` is where it is).
    #[error("complaint {id} moved on: it is {actual:?}")]
    ComplaintMoved {
        id: String,
        actual: Option<qrgate_core::state::ComplaintStatus>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The PostgreSQL failures worth retrying: serialization_failure,
/// deadlock_detected, lock_not_available, admin/crash shutdown,
/// cannot_connect_now, and a lost or unavailable connection.
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(
            d.code().unwrap_or_default().as_ref(),
            "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03"
        ),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

impl From<sqlx::Error> for MovementError {
    fn from(e: sqlx::Error) -> Self {
        MovementError::Store(StoreError::from(e))
    }
}

impl From<DbError> for MovementError {
    fn from(e: DbError) -> Self {
        MovementError::Store(StoreError::Database(e))
    }
}

impl MovementError {
    /// A business refusal (as opposed to an infrastructure failure).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, MovementError::Store(_))
    }
}

/// What a cap counts: money, or uses (refunds, payments without the PIN,
/// payments a minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapUnit {
    MinorUnits,
    Uses,
}

impl CapUnit {
    pub const fn as_str(self) -> &'static str {
        match self {
            CapUnit::MinorUnits => "minor units",
            CapUnit::Uses => "uses",
        }
    }
}
