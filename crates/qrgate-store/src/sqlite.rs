//! SQLite store, the embedded default: one file in WAL mode with
//! `synchronous=FULL`; one writer thread owns the only write connection,
//! readers run their queries where they are called, and a checkpointer thread
//! copies committed WAL frames back into the database file (see [`crate::lite`]).
//!
//! The writer commits many movements per transaction (group commit): it
//! takes every job waiting in its queue (up to [`MAX_BATCH`]), runs them in
//! one transaction (when one is refused, the batch runs again with each
//! movement in its own `SAVEPOINT`, so the refused one rolls back alone),
//! commits once and only then answers each caller. An acknowledged movement
//! is therefore durable; a crash before the commit loses only
//! unacknowledged work. `BEGIN IMMEDIATE` takes the write lock up front, and
//! a 5-second busy timeout covers another process holding it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use qrgate_core::Timestamp;

use crate::db::Conn;
use crate::error::{MovementError, StoreError};
use crate::lite::{self, LiteConn, Readers};
use crate::migrate;
use crate::write::Job;

/// Most movements committed in one transaction.
pub const MAX_BATCH: usize = 256;

/// A job waiting in the writer's queue, with the channel its caller waits
/// on. Its result is kept until the transaction it ran in commits: a batch
/// that runs again with savepoints runs it again, and only the last pass is
/// answered.
trait Queued: Send {
    /// Run it; `false` when it was refused (its transaction or savepoint
    /// must roll back).
    fn run<'a>(
        &'a mut self,
        c: &'a mut LiteConn,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
    /// Send the kept result (after the commit).
    fn answer(self: Box<Self>);
    /// Send a failure instead (the transaction did not commit).
    fn fail(self: Box<Self>, why: &str);
}

struct Pending<J: Job> {
    job: J,
    result: Option<Result<J::Out, MovementError>>,
    reply: oneshot::Sender<Result<J::Out, MovementError>>,
}

impl<J: Job> Queued for Pending<J> {
    fn run<'a>(
        &'a mut self,
        c: &'a mut LiteConn,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let r = self.job.run(c).await;
            let ok = r.is_ok();
            self.result = Some(r);
            ok
        })
    }

    fn answer(self: Box<Self>) {
        let r = self.result.unwrap_or_else(|| {
            Err(StoreError::Unavailable("the SQLite writer did not run the request".into()).into())
        });
        let _ = self.reply.send(r);
    }

    fn fail(self: Box<Self>, why: &str) {
        let _ = self
            .reply
            .send(Err(StoreError::Unavailable(why.to_owned()).into()));
    }
}

type Queue = Box<dyn Queued>;

/// What the writer has committed since the store opened (for `/metrics`):
/// `writes / transactions` is the mean group size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommits {
    /// Transactions committed.
    pub transactions: u64,
    /// Writes answered from those transactions (applied or refused).
    pub writes: u64,
    /// Batches run again with a savepoint per write, because one was refused.
    pub savepoint_passes: u64,
    /// Microseconds spent in `COMMIT` (writing WAL frames, fsync).
    pub commit_micros: u64,
}

#[derive(Default)]
struct Counts {
    transactions: AtomicU64,
    writes: AtomicU64,
    savepoint_passes: AtomicU64,
    commit_micros: AtomicU64,
}

/// The SQLite implementation of [`crate::Store`].
#[derive(Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<Queue>,
    counts: Arc<Counts>,
    read: Readers,
    /// Dropped with the last clone of the store, which stops the checkpointer.
    _checkpoints: Arc<std::sync::mpsc::Sender<()>>,
}

/// How often committed WAL frames are copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

async fn migrate(
    conn: &mut LiteConn,
    now: Timestamp,
) -> Result<migrate::MigrationReport, StoreError> {
    let todo = migrate::pending(conn, migrate::SQLITE).await?;
    let already = migrate::SQLITE.len() - todo.len();
    let mut applied = Vec::new();
    for m in todo {
        conn.exec("BEGIN IMMEDIATE", &[]).await?;
        let r = async {
            conn.batch(m.sql)?;
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

type Opened = Result<migrate::MigrationReport, StoreError>;

impl SqliteStore {
    /// Open (creating the file on first start) and migrate. The writer runs
    /// on a thread of its own, which owns the only read-write connection.
    pub async fn open(
        url: &str,
        now: Timestamp,
    ) -> Result<(SqliteStore, migrate::MigrationReport), StoreError> {
        let path = lite::path_of(url)?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let (opened_tx, opened_rx) = oneshot::channel::<Opened>();
        let writer_path = path.clone();
        let counts = Arc::new(Counts::default());
        let writer_counts = Arc::clone(&counts);
        std::thread::Builder::new()
            .name("qrgate-sqlite-writer".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = opened_tx.send(Err(StoreError::Unavailable(format!(
                            "cannot start the SQLite writer: {e}"
                        ))));
                        return;
                    }
                };
                rt.block_on(async move {
                    let opened = async {
                        let mut conn = lite::open_writer(&writer_path)?;
                        let report = migrate(&mut conn, now).await?;
                        Ok::<_, StoreError>((conn, report))
                    }
                    .await;
                    match opened {
                        Ok((conn, report)) => {
                            if opened_tx.send(Ok(report)).is_ok() {
                                writer(conn, rx, &writer_counts).await;
                            }
                        }
                        Err(e) => {
                            let _ = opened_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer: {e}")))?;
        let report = opened_rx.await.map_err(|_| {
            StoreError::Unavailable("the SQLite writer stopped while opening".into())
        })??;
        let checkpointer = lite::Checkpointer::open(&path)?;
        let read = Readers::new(path);
        // Fail at start, not at the first request, when readers cannot open.
        drop(read.get()?);
        let (stop, stopped) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("qrgate-sqlite-checkpoint".into())
            .spawn(move || checkpointer.run(CHECKPOINT_EVERY, stopped))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the SQLite checkpointer: {e}"))
            })?;
        Ok((
            SqliteStore {
                writer: tx,
                counts,
                read,
                _checkpoints: Arc::new(stop),
            },
            report,
        ))
    }

    pub(crate) async fn write<J: Job>(&self, job: J) -> Result<J::Out, MovementError> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(Box::new(Pending {
                job,
                result: None,
                reply,
            }))
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the SQLite writer dropped the request".into()))?
    }

    /// Apply a movement in the writer's next batch.
    pub(crate) async fn apply(
        &self,
        m: crate::write::Prepared,
    ) -> Result<crate::Applied, MovementError> {
        self.write(crate::write::Apply(m)).await
    }

    /// What the writer has committed since the store opened.
    pub fn group_commits(&self) -> GroupCommits {
        let c = &self.counts;
        GroupCommits {
            transactions: c.transactions.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            savepoint_passes: c.savepoint_passes.load(Ordering::Relaxed),
            commit_micros: c.commit_micros.load(Ordering::Relaxed),
        }
    }

    pub(crate) async fn reader(&self) -> Result<lite::Reader, StoreError> {
        self.read.get()
    }
}

async fn writer(mut conn: LiteConn, mut rx: mpsc::Receiver<Queue>, counts: &Counts) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Whether the last batch had a refused movement: then the next one goes
    // straight to savepoints, so a stream of refusals (replayed codes, full
    // caps) costs at most one extra pass per clean-to-refused change.
    let mut refusals_seen = false;
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        refusals_seen = run_batch(&mut conn, &mut batch, refusals_seen, counts).await;
    }
}

fn fail_all(batch: &mut Vec<Queue>, why: &str) {
    for job in batch.drain(..) {
        job.fail(why);
    }
}

/// What a pass over a batch came to.
enum Pass {
    /// Committed; `true` when a job was refused (and rolled back to its
    /// savepoint). Each job keeps its result until it is answered.
    Committed(bool),
    /// A movement was refused in a pass without savepoints: the whole
    /// transaction was rolled back and nothing of the batch is written.
    Refused,
    /// The transaction itself failed (why): nothing is written, and every
    /// job is to be told so.
    Failed(String),
}

/// Commit `batch` in one transaction and answer each job; true when a
/// movement of it was refused.
///
/// First, unless refusals were just seen, the batch runs without savepoints:
/// a savepoint makes SQLite copy every page a movement first touches into
/// its sub-journal, which was an eighth of the writer's time. If a movement
/// is refused, that transaction is rolled back whole and the batch runs again
/// with a savepoint per movement, so the refused one rolls back alone. The
/// writer is the only one changing the file between the two passes (another
/// process would have to wait for the write lock, and then each pass sees a
/// consistent state of its own), so the answers are those of the last pass.
async fn run_batch(
    conn: &mut LiteConn,
    batch: &mut Vec<Queue>,
    refusals_seen: bool,
    counts: &Counts,
) -> bool {
    if !refusals_seen {
        match pass(conn, batch, false, counts).await {
            Pass::Committed(_) => {
                answer(batch);
                return false;
            }
            Pass::Failed(why) => {
                fail_all(batch, &why);
                return false;
            }
            Pass::Refused => {}
        }
    }
    counts.savepoint_passes.fetch_add(1, Ordering::Relaxed);
    match pass(conn, batch, true, counts).await {
        Pass::Committed(refused) => {
            answer(batch);
            refused
        }
        Pass::Failed(why) => {
            fail_all(batch, &why);
            true
        }
        // Not returned by a pass with savepoints (it rolls back only the
        // refused job); answered all the same, so no caller waits forever.
        Pass::Refused => {
            fail_all(batch, "the batch was rolled back");
            true
        }
    }
}

fn answer(batch: &mut Vec<Queue>) {
    for job in batch.drain(..) {
        job.answer();
    }
}

/// One transaction over the batch; with `savepoints`, each movement in its
/// own savepoint (a refusal rolls back that movement only), without, the
/// first refusal rolls back the transaction.
async fn pass(conn: &mut LiteConn, batch: &mut [Queue], savepoints: bool, counts: &Counts) -> Pass {
    if let Err(e) = conn.exec("BEGIN IMMEDIATE", &[]).await {
        tracing::warn!(error = %e, "SQLite BEGIN IMMEDIATE failed");
        return Pass::Failed(format!("could not start a transaction: {e}"));
    }
    let mut refused = false;
    let mut failed = None;
    for job in batch.iter_mut() {
        let step = async {
            if !savepoints {
                let ok = job.run(conn).await;
                if !ok {
                    conn.exec("ROLLBACK", &[]).await?;
                }
                return Ok::<_, crate::error::DbError>(ok);
            }
            conn.exec("SAVEPOINT movement", &[]).await?;
            let ok = job.run(conn).await;
            if ok {
                conn.exec("RELEASE movement", &[]).await?;
            } else {
                conn.exec("ROLLBACK TO movement", &[]).await?;
                conn.exec("RELEASE movement", &[]).await?;
            }
            Ok(ok)
        }
        .await;
        match step {
            Ok(false) if !savepoints => return Pass::Refused,
            Ok(ok) => refused |= !ok,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if let Some(e) = failed {
        tracing::error!(error = %e, "SQLite savepoint handling failed; rolling back the batch");
        conn.exec("ROLLBACK", &[]).await.ok();
        return Pass::Failed(format!("transaction rolled back: {e}"));
    }
    let started = Instant::now();
    if let Err(e) = conn.exec("COMMIT", &[]).await {
        tracing::error!(error = %e, "SQLite COMMIT failed");
        conn.exec("ROLLBACK", &[]).await.ok();
        return Pass::Failed(format!("commit failed: {e}"));
    }
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    counts.commit_micros.fetch_add(micros, Ordering::Relaxed);
    counts.transactions.fetch_add(1, Ordering::Relaxed);
    counts
        .writes
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    Pass::Committed(refused)
}
