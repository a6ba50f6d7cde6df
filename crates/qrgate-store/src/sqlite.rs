//! SQLite store, the embedded default: one file in WAL mode with
//! `synchronous=FULL`, one writer task that owns the only write connection,
//! and a small pool of readers.
//!
//! The writer commits many movements per transaction (group commit): it
//! takes every job waiting in its queue (up to [`MAX_BATCH`]), runs each
//! inside its own `SAVEPOINT` so a refused movement rolls back alone, then
//! commits once and only then answers each caller. An acknowledged movement
//! is therefore durable; a crash before the commit loses only
//! unacknowledged work. `BEGIN IMMEDIATE` takes the write lock up front, and
//! a 5-second busy timeout covers another process holding it.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use qrgate_core::Timestamp;

use crate::db::Conn;
use crate::error::{MovementError, StoreError};
use crate::migrate;
use crate::write::{self, Done, Work};

/// Most movements committed in one transaction.
pub const MAX_BATCH: usize = 256;

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Done, MovementError>>,
}

/// The SQLite implementation of [`crate::Store`].
#[derive(Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<Job>,
    read: SqlitePool,
}

fn options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    let opts = SqliteConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
        url: url.into(),
        why: e.to_string(),
    })?;
    Ok(opts
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .log_statements(tracing::log::LevelFilter::Trace))
}

async fn migrate(
    conn: &mut SqliteConnection,
    now: Timestamp,
) -> Result<migrate::MigrationReport, StoreError> {
    let todo = migrate::pending(conn, migrate::SQLITE).await?;
    let already = migrate::SQLITE.len() - todo.len();
    let mut applied = Vec::new();
    for m in todo {
        conn.exec("BEGIN IMMEDIATE", &[]).await?;
        let r = async {
            sqlx::raw_sql(m.sql).execute(&mut *conn).await?;
            migrate::record(conn, m, now.unix_millis()).await
        }
        .await;
        match r {
            Ok(()) => conn.exec("COMMIT", &[]).await.map(|_| ())?,
            Err(e) => {
                conn.exec("ROLLBACK", &[]).await.ok();
                return Err(StoreError::Migration {
                    version: m.version,
                    name: m.name.into(),
                    problem: format!("failed: {e}"),
                });
            }
        }
        applied.push((m.version, m.name.to_owned()));
    }
    Ok(migrate::MigrationReport { applied, already })
}

impl SqliteStore {
    /// Open (creating the file on first start) and migrate.
    pub async fn open(
        url: &str,
        now: Timestamp,
    ) -> Result<(SqliteStore, migrate::MigrationReport), StoreError> {
        let opts = options(url)?;
        let mut conn = opts.connect().await?;
        let report = migrate(&mut conn, now).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts.read_only(true))
            .await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(writer(conn, rx));
        Ok((SqliteStore { writer: tx, read }, report))
    }

    pub(crate) async fn write(&self, work: Work) -> Result<Done, MovementError> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(Job { work, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the SQLite writer dropped the request".into()))?
    }

    pub(crate) async fn reader(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, StoreError> {
        Ok(self.read.acquire().await?)
    }
}

async fn writer(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, &mut batch).await;
    }
    conn.close().await.ok();
}

fn fail_all(batch: &mut Vec<Job>, why: &str) {
    for job in batch.drain(..) {
        let _ = job
            .reply
            .send(Err(StoreError::Unavailable(why.to_owned()).into()));
    }
}

async fn run_batch(conn: &mut SqliteConnection, batch: &mut Vec<Job>) {
    if let Err(e) = conn.exec("BEGIN IMMEDIATE", &[]).await {
        tracing::warn!(error = %e, "SQLite BEGIN IMMEDIATE failed");
        fail_all(batch, &format!("could not start a transaction: {e}"));
        return;
    }
    let mut results = Vec::with_capacity(batch.len());
    for job in batch.iter() {
        let step = async {
            conn.exec("SAVEPOINT movement", &[]).await?;
            let r = write::run(conn, &job.work).await;
            if r.is_ok() {
                conn.exec("RELEASE movement", &[]).await?;
            } else {
                conn.exec("ROLLBACK TO movement", &[]).await?;
                conn.exec("RELEASE movement", &[]).await?;
            }
            Ok::<_, sqlx::Error>(r)
        }
        .await;
        match step {
            Ok(r) => results.push(r),
            Err(e) => {
                tracing::error!(error = %e, "SQLite savepoint handling failed; rolling back the batch");
                conn.exec("ROLLBACK", &[]).await.ok();
                fail_all(batch, &format!("transaction rolled back: {e}"));
                return;
            }
        }
    }
    if let Err(e) = conn.exec("COMMIT", &[]).await {
        tracing::error!(error = %e, "SQLite COMMIT failed");
        conn.exec("ROLLBACK", &[]).await.ok();
        fail_all(batch, &format!("commit failed: {e}"));
        return;
    }
    for (job, r) in batch.drain(..).zip(results) {
        let _ = job.reply.send(r);
    }
}
