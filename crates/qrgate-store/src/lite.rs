//! SQLite connections through rusqlite: statements run on the calling thread.
//!
//! sqlx's SQLite driver gives every connection a worker thread and sends each
//! statement there and back over channels; a payment runs about twenty
//! statements, so most of its time went to thread wake-ups. Here the writer
//! owns a plain connection on its own thread, and readers run their (short,
//! page-cache) queries where they are called. Prepared statements are cached
//! per connection.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, ToSql};

use crate::db::{Arg, Conn, Dialect, Row, Val};
use crate::error::{DbError, StoreError};

/// Prepared statements kept per connection (the store uses fewer than this).
const STATEMENT_CACHE: usize = 256;
/// Page cache of the writer, KiB (negative `cache_size` means KiB).
const WRITER_CACHE_KIB: i64 = -32 * 1024;
/// Page cache of each reader, KiB. Reads run on the runtime's worker
/// threads, so about as many readers as workers are in use at once.
const READER_CACHE_KIB: i64 = -16 * 1024;
/// WAL pages after which the writer checkpoints (and can restart the WAL).
const WAL_PAGES: i64 = 8000;
/// Idle reader connections kept open.
const IDLE_READERS: usize = 8;

/// The path a `sqlite://PATH` or `sqlite:PATH` URL names.
pub(crate) fn path_of(url: &str) -> Result<PathBuf, StoreError> {
    let bad = |why: &str| StoreError::BadUrl {
        url: url.into(),
        why: why.into(),
    };
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| bad("expected sqlite://PATH"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() {
        return Err(bad("the path is empty"));
    }
    if path == ":memory:" {
        return Err(bad(
            "an in-memory database cannot be shared by the writer and the readers; name a file",
        ));
    }
    Ok(PathBuf::from(path))
}

fn tune(c: &Connection) -> Result<(), StoreError> {
    let db = |e| StoreError::Database(DbError::from(e));
    c.busy_timeout(Duration::from_secs(5)).map_err(db)?;
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    c.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    Ok(())
}

/// The one read-write connection: WAL journal, `synchronous=FULL`.
pub(crate) fn open_writer(path: &std::path::Path) -> Result<LiteConn, StoreError> {
    let db = |e| StoreError::Database(DbError::from(e));
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    tune(&c)?;
    let mode: String = c
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "{} would not switch to WAL (journal_mode is {mode})",
            path.display()
        )));
    }
    c.pragma_update(None, "synchronous", "FULL").map_err(db)?;
    // Savepoint journals stay in memory rather than in temporary files.
    c.pragma_update(None, "temp_store", "MEMORY").map_err(db)?;
    c.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
        .map_err(db)?;
    // The checkpointer thread copies most of the WAL back in the background;
    // the writer's own checkpoint (every WAL_PAGES) then has little left to
    // copy, and completing it in the writer lets the next commit start the
    // WAL file over instead of growing it (a WAL that only grows makes every
    // append allocate and zero new file blocks).
    c.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)
        .map_err(db)?;
    Ok(LiteConn(c))
}

fn open_reader(path: &std::path::Path) -> Result<LiteConn, StoreError> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    tune(&c)?;
    c.pragma_update(None, "cache_size", READER_CACHE_KIB)
        .map_err(|e| StoreError::Database(DbError::from(e)))?;
    Ok(LiteConn(c))
}

/// A connection that only copies committed WAL frames into the database
/// file (`PRAGMA wal_checkpoint(PASSIVE)`), on a thread of its own, so the
/// writer's commits never include a checkpoint and its fsync.
pub(crate) struct Checkpointer(Connection);

impl Checkpointer {
    pub(crate) fn open(path: &std::path::Path) -> Result<Checkpointer, StoreError> {
        let c = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        tune(&c)?;
        Ok(Checkpointer(c))
    }

    /// Checkpoint every `every` until `stop` is dropped.
    pub(crate) fn run(self, every: Duration, stop: std::sync::mpsc::Receiver<()>) {
        let c = self.0;
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
            // PASSIVE never waits for readers or the writer; busy is not an error here.
            let r: Result<(i64, i64, i64), _> =
                c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                });
            match r {
                Ok((_, log, done)) => {
                    tracing::trace!(wal_frames = log, checkpointed = done, "checkpoint")
                }
                Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed; will retry"),
            }
        }
        // Leave a short WAL behind for the next start.
        let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

/// A rusqlite connection speaking the store's [`Conn`] protocol. Its futures
/// finish without ever waiting: each statement runs to completion inside.
pub(crate) struct LiteConn(Connection);

impl LiteConn {
    /// Run several statements (a migration file).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.0.execute_batch(sql).map_err(DbError::from)
    }

    fn in_transaction(&self) -> bool {
        !self.0.is_autocommit()
    }
}

fn bind<'a>(args: &'a [Arg<'_>]) -> Vec<&'a dyn ToSql> {
    args.iter()
        .map(|a| match a {
            Arg::I64(v) => v as &dyn ToSql,
            Arg::Str(v) => v as &dyn ToSql,
            Arg::OptStr(v) => v as &dyn ToSql,
            Arg::OptI64(v) => v as &dyn ToSql,
            Arg::Bool(v) => v as &dyn ToSql,
            Arg::Bytes(v) => v as &dyn ToSql,
        })
        .collect()
}

impl LiteConn {
    fn exec_now(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        let sql = crate::db::sqlite_sql(sql);
        let mut st = self.0.prepare_cached(sql).map_err(DbError::from)?;
        let n = st.execute(bind(args).as_slice()).map_err(DbError::from)?;
        Ok(n as u64)
    }

    fn rows_now(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
        let sql = crate::db::sqlite_sql(sql);
        let mut st = self.0.prepare_cached(sql).map_err(DbError::from)?;
        let width = st.column_count();
        let names: Arc<[String]> = st.column_names().iter().map(|n| (*n).to_owned()).collect();
        let mut rows = st.query(bind(args).as_slice()).map_err(DbError::from)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(DbError::from)? {
            let mut vals = Vec::with_capacity(width);
            for i in 0..width {
                vals.push(match r.get_ref(i).map_err(DbError::from)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::I64(v),
                    ValueRef::Text(t) => Val::Str(
                        std::str::from_utf8(t)
                            .map_err(|e| DbError::Decode {
                                column: names.get(i).cloned().unwrap_or_default(),
                                problem: e.to_string(),
                            })?
                            .to_owned(),
                    ),
                    ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
                    ValueRef::Real(_) => {
                        return Err(DbError::Decode {
                            column: names.get(i).cloned().unwrap_or_default(),
                            problem: "the store never writes real values".into(),
                        });
                    }
                });
            }
            out.push(Row::new(Arc::clone(&names), vals));
        }
        Ok(out)
    }
}

impl Conn for LiteConn {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    async fn exec(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        self.exec_now(sql, args)
    }
    async fn rows(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
        self.rows_now(sql, args)
    }
}

/// Read-only connections, opened on demand and kept when idle.
#[derive(Clone)]
pub(crate) struct Readers {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<LiteConn>>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Readers {
        Readers {
            path: Arc::new(path),
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<LiteConn>> {
        match self.idle.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn get(&self) -> Result<Reader, StoreError> {
        let conn = match self.idle().pop() {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        Ok(Reader {
            conn: Some(conn),
            home: self.clone(),
        })
    }
}

/// A reader on loan; back to the idle list when dropped.
pub(crate) struct Reader {
    conn: Option<LiteConn>,
    home: Readers,
}

impl Drop for Reader {
    fn drop(&mut self) {
        let Some(mut c) = self.conn.take() else {
            return;
        };
        // A snapshot left open (a caller gone mid-way) must not pin old pages.
        if c.in_transaction() && c.exec_now("ROLLBACK", &[]).is_err() {
            return;
        }
        let mut idle = self.home.idle();
        if idle.len() < IDLE_READERS {
            idle.push(c);
        }
    }
}

impl Conn for Reader {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    async fn exec(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        match self.conn.as_mut() {
            Some(c) => c.exec_now(sql, args),
            None => Err(DbError::Closed),
        }
    }
    async fn rows(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
        match self.conn.as_mut() {
            Some(c) => c.rows_now(sql, args),
            None => Err(DbError::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_is_built_without_memory_statistics() {
        // Set by .cargo/config.toml (LIBSQLITE3_FLAGS): without it every
        // SQLite allocation takes a global mutex.
        let c = Connection::open_in_memory().unwrap();
        let mut st = c.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "build from the repository (its .cargo/config.toml sets LIBSQLITE3_FLAGS): {options:?}"
        );
    }

    #[test]
    fn urls_name_a_file() {
        assert_eq!(path_of("sqlite://a/b.db").unwrap(), PathBuf::from("a/b.db"));
        assert_eq!(
            path_of("sqlite:///tmp/x.db").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(
            path_of("sqlite:x.db?mode=rwc").unwrap(),
            PathBuf::from("x.db")
        );
        for bad in ["sqlite://", "sqlite::memory:", "postgres://h/db", "x.db"] {
            assert!(
                matches!(path_of(bad), Err(StoreError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "qrgate-lite-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn constraint_errors_keep_their_sqlite_codes() {
        let p = dir().join("e.db");
        let mut w = open_writer(&p).unwrap();
        w.batch("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0))")
            .unwrap();
        w.exec(
            "INSERT INTO t (k, n) VALUES ($1, $2)",
            &[Arg::Str("a"), Arg::I64(1)],
        )
        .await
        .unwrap();
        let code = |e: DbError| (e.code().unwrap(), e.is_unique_violation());
        let e = w
            .exec(
                "INSERT INTO t (k, n) VALUES ($1, $2)",
                &[Arg::Str("a"), Arg::I64(1)],
            )
            .await
            .unwrap_err();
        assert_eq!(code(e), ("1555".into(), true));
        let e = w
            .exec(
                "INSERT INTO t (k, n) VALUES ($1, $2)",
                &[Arg::Str("b"), Arg::I64(-1)],
            )
            .await
            .unwrap_err();
        assert_eq!(code(e), ("275".into(), false));
    }

    #[tokio::test]
    async fn a_reader_returned_mid_snapshot_is_rolled_back_and_sees_new_rows() {
        let p = dir().join("r.db");
        let mut w = open_writer(&p).unwrap();
        w.batch("CREATE TABLE t (n INTEGER NOT NULL)").unwrap();
        let readers = Readers::new(p);
        {
            let mut r = readers.get().unwrap();
            r.exec("BEGIN", &[]).await.unwrap();
            let rows = r.rows("SELECT count(*) AS n FROM t", &[]).await.unwrap();
            assert_eq!(rows[0].i64("n").unwrap(), 0);
            // dropped inside its snapshot
        }
        w.exec("INSERT INTO t (n) VALUES ($1)", &[Arg::I64(7)])
            .await
            .unwrap();
        let mut r = readers.get().unwrap();
        let rows = r.rows("SELECT count(*) AS n FROM t", &[]).await.unwrap();
        assert_eq!(
            rows[0].i64("n").unwrap(),
            1,
            "the reused reader saw an old snapshot"
        );
        assert_eq!(readers.idle().len(), 0, "the only reader is on loan");
        drop(r);
        assert_eq!(readers.idle().len(), 1);
        let e = r_write(&readers).await;
        assert_eq!(
            e.code().as_deref(),
            Some("8"),
            "a write on a reader must fail as read-only (SQLITE_READONLY): {e}"
        );
    }

    async fn r_write(readers: &Readers) -> DbError {
        let mut r = readers.get().unwrap();
        r.exec("INSERT INTO t (n) VALUES ($1)", &[Arg::I64(1)])
            .await
            .unwrap_err()
    }
}
