//! PostgreSQL store: a connection pool; each movement is one statement
//! ([`one_statement`]) or, when that refuses it, one READ COMMITTED
//! transaction that names the refusal; the guards are conditional writes on
//! the rows they guard, taken in a fixed order, retried on serialization
//! failure or deadlock.
//! The SQL is portable to Postgres-compatible distributed engines: no
//! advisory locks.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use qrgate_core::Timestamp;

use crate::db::Conn;
use crate::error::{MovementError, StoreError, is_transient};
use crate::migrate;
use crate::model::Applied;
use crate::one_statement::{self, Outcome};
use crate::write::{self, Job, Prepared};

/// Attempts for a movement that meets a serialization failure or deadlock.
const MAX_ATTEMPTS: u32 = 8;

/// The PostgreSQL implementation of [`crate::Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    paths: Arc<PathCounts>,
}

#[derive(Default)]
struct PathCounts {
    one_statement: AtomicU64,
    step_by_step: AtomicU64,
}

/// How this store's movements were written since it opened: as one
/// statement, or step by step in a transaction (a guard refused the
/// statement, or the movement is of a shape it does not compose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MovementPaths {
    pub one_statement: u64,
    pub step_by_step: u64,
}

fn options(url: &str, schema: Option<&str>) -> Result<PgConnectOptions, StoreError> {
    let mut opts = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
        url: crate::redact_url(url),
        why: e.to_string(),
    })?;
    if let Some(s) = schema {
        opts = opts.options([("search_path", s)]);
    }
    Ok(opts.log_statements(tracing::log::LevelFilter::Trace))
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl PgStore {
    /// Connect, migrate, and return the store. `schema`, if given, is created
    /// when missing and used as the search path (tests use one each).
    pub async fn open(
        url: &str,
        schema: Option<&str>,
        max_connections: u32,
        now: Timestamp,
    ) -> Result<(PgStore, migrate::MigrationReport), StoreError> {
        if let Some(s) = schema {
            if !valid_schema(s) {
                return Err(StoreError::BadUrl {
                    url: crate::redact_url(url),
                    why: format!("schema {s:?} must be lower-case letters, digits and '_'"),
                });
            }
            let mut c = options(url, None)?.connect().await.map_err(unavailable)?;
            let ddl = format!("CREATE SCHEMA IF NOT EXISTS {s}");
            sqlx::raw_sql(&ddl).execute(&mut c).await?;
            c.close().await.ok();
        }
        // No ping before each acquire: a payment takes a connection several
        // times, and each ping is a round trip. A connection that died is
        // found by its first statement instead (an I/O error, answered 503
        // and retried by the client with its Idempotency-Key) and dropped.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options(url, schema)?)
            .await
            .map_err(unavailable)?;
        let report = migrate(&pool, now).await?;
        Ok((
            PgStore {
                pool,
                paths: Arc::default(),
            },
            report,
        ))
    }

    /// How movements were written since the store opened.
    pub fn movement_paths(&self) -> MovementPaths {
        MovementPaths {
            one_statement: self.paths.one_statement.load(Ordering::Relaxed),
            step_by_step: self.paths.step_by_step.load(Ordering::Relaxed),
        }
    }

    pub(crate) async fn reader(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        self.pool.acquire().await.map_err(unavailable)
    }

    /// Apply a movement: as one statement when it can be composed, else
    /// step by step in a transaction.
    pub(crate) async fn apply(&self, m: Prepared) -> Result<Applied, MovementError> {
        if self.one_statement(&m).await? {
            self.paths.one_statement.fetch_add(1, Ordering::Relaxed);
            return Ok(Applied::Done { audit_seq: None });
        }
        self.paths.step_by_step.fetch_add(1, Ordering::Relaxed);
        self.write(write::Apply(m)).await
    }

    /// Run one write in its own transaction, retried on serialization
    /// failure or deadlock.
    pub(crate) async fn write<J: Job>(&self, job: J) -> Result<J::Out, MovementError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            match job.run(&mut *tx).await {
                Ok(r) => match tx.commit().await {
                    Ok(()) => return Ok(r),
                    Err(e) if is_transient(&e) && attempt < MAX_ATTEMPTS => backoff(attempt).await,
                    Err(e) => return Err(StoreError::from(e).into()),
                },
                Err(MovementError::Store(StoreError::Database(e)))
                    if e.is_transient() && attempt < MAX_ATTEMPTS =>
                {
                    tx.rollback().await.ok();
                    tracing::debug!(attempt, error = %e, "retrying movement");
                    backoff(attempt).await;
                }
                Err(e) => {
                    tx.rollback().await.ok();
                    return Err(e);
                }
            }
        }
    }

    /// Write a movement as one statement (see [`one_statement`]); `true`
    /// when it is written. `false` leaves the movement to the step-by-step
    /// transaction: it was not composed, a guard refused it (the transaction
    /// names the refusal), or the database answered an error that is not
    /// transient (the transaction reports it). Nothing was written then.
    async fn one_statement(&self, m: &Prepared) -> Result<bool, MovementError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut c = self.pool.acquire().await.map_err(unavailable)?;
            match one_statement::apply(&mut c, m).await {
                Ok(Outcome::Written) => return Ok(true),
                Ok(Outcome::Refused | Outcome::NotComposed) => return Ok(false),
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    drop(c);
                    tracing::debug!(attempt, error = %e, "retrying one-statement movement");
                    backoff(attempt).await;
                }
                Err(e) if e.is_transient() => return Err(StoreError::from(e).into()),
                Err(e) => {
                    tracing::warn!(error = %e, "one-statement movement failed; running it step by step");
                    return Ok(false);
                }
            }
        }
    }
}

async fn backoff(attempt: u32) {
    // 2, 4, 8 … ms with jitter from the clock's sub-millisecond noise.
    let base = 1_u64 << attempt.min(8);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            % 1000,
    );
    tokio::time::sleep(Duration::from_micros(base * 1000 + jitter)).await;
}

fn unavailable(e: sqlx::Error) -> StoreError {
    if is_transient(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::from(e)
    }
}

async fn migrate(pool: &PgPool, now: Timestamp) -> Result<migrate::MigrationReport, StoreError> {
    // Several gateways may start at once: the table lock makes one migrate
    // while the others wait, then find nothing pending.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = pool.begin().await.map_err(unavailable)?;
        let r = async {
            tx.exec(
                "CREATE TABLE IF NOT EXISTS qrgate_migrations (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, \
                 checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                &[],
            )
            .await?;
            tx.exec("LOCK TABLE qrgate_migrations IN EXCLUSIVE MODE", &[]).await?;
            let todo = migrate::pending(&mut *tx, migrate::POSTGRES).await?;
            let already = migrate::POSTGRES.len() - todo.len();
            let mut applied = Vec::new();
            for m in todo {
                sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(|e| StoreError::Migration {
                    version: m.version,
                    name: m.name.into(),
                    problem: format!("failed: {e}"),
                })?;
                migrate::record(&mut *tx, m, now.unix_millis()).await?;
                applied.push((m.version, m.name.to_owned()));
            }
            Ok::<_, StoreError>(migrate::MigrationReport { applied, already })
        }
        .await;
        match r {
            Ok(report) => {
                tx.commit().await?;
                return Ok(report);
            }
            // Two nodes creating the bookkeeping table at once: try again.
            Err(StoreError::Database(e)) if attempt < 3 => {
                tx.rollback().await.ok();
                tracing::debug!(error = %e, "retrying migration");
            }
            Err(e) => {
                tx.rollback().await.ok();
                return Err(e);
            }
        }
    }
}
