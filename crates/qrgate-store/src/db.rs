//! A thin layer over the two sqlx drivers so the store's logic is written
//! once. Statements use `$1, $2, …` placeholders; the SQLite side rewrites
//! them to `?1, ?2, …` (SQLite's explicit-index form) once per statement.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};

use sqlx::postgres::PgRow;
use sqlx::{Column, PgConnection, Row as _, ValueRef};

pub(crate) use crate::error::DbError;

/// A bound parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    I64(i64),
    Str(&'a str),
    OptStr(Option<&'a str>),
    OptI64(Option<i64>),
    Bool(bool),
    Bytes(&'a [u8]),
}

/// A column value as the store reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    I64(i64),
    Str(String),
    Bytes(Vec<u8>),
    Null,
}

/// One result row, read by column name: a reader says which column it
/// wants, so adding or reordering the columns of a `SELECT` cannot make it
/// read the wrong one. The names are shared by every row of a result.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    names: Arc<[String]>,
    vals: Vec<Val>,
}

impl Row {
    pub(crate) fn new(names: Arc<[String]>, vals: Vec<Val>) -> Row {
        Row { names, vals }
    }

    fn get(&self, col: &str) -> Result<&Val, DbError> {
        self.names
            .iter()
            .position(|n| n == col)
            .and_then(|i| self.vals.get(i))
            .ok_or_else(|| DbError::Decode {
                column: col.into(),
                problem: format!("not in the result (columns: {})", self.names.join(", ")),
            })
    }

    pub fn i64(&self, col: &str) -> Result<i64, DbError> {
        match self.get(col)? {
            Val::I64(v) => Ok(*v),
            other => Err(decode_err(col, "integer", other)),
        }
    }

    pub fn opt_i64(&self, col: &str) -> Result<Option<i64>, DbError> {
        match self.get(col)? {
            Val::I64(v) => Ok(Some(*v)),
            Val::Null => Ok(None),
            other => Err(decode_err(col, "integer or null", other)),
        }
    }

    pub fn str(&self, col: &str) -> Result<String, DbError> {
        match self.get(col)? {
            Val::Str(v) => Ok(v.clone()),
            other => Err(decode_err(col, "text", other)),
        }
    }

    pub fn opt_str(&self, col: &str) -> Result<Option<String>, DbError> {
        match self.get(col)? {
            Val::Str(v) => Ok(Some(v.clone())),
            Val::Null => Ok(None),
            other => Err(decode_err(col, "text or null", other)),
        }
    }

    pub fn bool(&self, col: &str) -> Result<bool, DbError> {
        Ok(self.i64(col)? != 0)
    }

    pub fn bytes(&self, col: &str) -> Result<Vec<u8>, DbError> {
        match self.get(col)? {
            Val::Bytes(v) => Ok(v.clone()),
            other => Err(decode_err(col, "bytes", other)),
        }
    }
}

fn decode_err(col: &str, want: &str, got: &Val) -> DbError {
    let found = match got {
        Val::Bytes(b) => format!("{} bytes", b.len()),
        other => format!("{other:?}"),
    };
    DbError::Decode {
        column: col.into(),
        problem: format!("expected {want}, found {found}"),
    }
}

/// The statements this crate runs against either database.
pub(crate) trait Conn: Send {
    fn dialect(&self) -> Dialect;
    fn exec(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<u64, DbError>> + Send;
    fn rows(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Vec<Row>, DbError>> + Send;
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match *a {
                Arg::I64(v) => q.bind(v),
                Arg::Str(v) => q.bind(v),
                Arg::OptStr(v) => q.bind(v),
                Arg::OptI64(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

static SQLITE_SQL: LazyLock<Mutex<HashMap<&'static str, &'static str>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// `$n` → `?n`, once per distinct statement (a bounded set of constants).
pub(crate) fn sqlite_sql(sql: &'static str) -> &'static str {
    let mut map = match SQLITE_SQL.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(sql)
        .or_insert_with(|| Box::leak(sql.replace('$', "?").into_boxed_str()))
}

/// The column names of a result, once for all its rows.
fn pg_names(r: &PgRow) -> Arc<[String]> {
    r.columns().iter().map(|c| c.name().to_owned()).collect()
}

fn pg_row(names: &Arc<[String]>, r: &PgRow) -> Result<Row, DbError> {
    let mut out = Vec::with_capacity(r.columns().len());
    for (i, col) in r.columns().iter().enumerate() {
        if r.try_get_raw(i)?.is_null() {
            out.push(Val::Null);
            continue;
        }
        let v = match sqlx::TypeInfo::name(col.type_info()) {
            "INT8" => Val::I64(r.try_get::<i64, _>(i)?),
            "INT4" => Val::I64(i64::from(r.try_get::<i32, _>(i)?)),
            "INT2" => Val::I64(i64::from(r.try_get::<i16, _>(i)?)),
            "BOOL" => Val::I64(i64::from(r.try_get::<bool, _>(i)?)),
            "BYTEA" => Val::Bytes(r.try_get::<Vec<u8>, _>(i)?),
            _ => Val::Str(r.try_get::<String, _>(i)?),
        };
        out.push(v);
    }
    Ok(Row::new(Arc::clone(names), out))
}

impl Conn for PgConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn exec(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        let q = bind_all!(sqlx::query(sql), args);
        Ok(q.execute(&mut *self).await?.rows_affected())
    }

    async fn rows(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
        let q = bind_all!(sqlx::query(sql), args);
        let rows = q.fetch_all(&mut *self).await?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let names = pg_names(first);
        rows.iter().map(|r| pg_row(&names, r)).collect()
    }
}

/// Which SQL dialect a connection speaks, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Conn for sqlx::pool::PoolConnection<sqlx::Postgres> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    async fn exec(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        Conn::exec(&mut **self, sql, args).await
    }
    async fn rows(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
        Conn::rows(&mut **self, sql, args).await
    }
}

/// A reader connection of either store.
pub(crate) enum AnyConn {
    Sqlite(crate::lite::Reader),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl Conn for AnyConn {
    fn dialect(&self) -> Dialect {
        match self {
            AnyConn::Sqlite(_) => Dialect::Sqlite,
            AnyConn::Postgres(_) => Dialect::Postgres,
        }
    }
    async fn exec(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        match self {
            AnyConn::Sqlite(c) => Conn::exec(c, sql, args).await,
            AnyConn::Postgres(c) => Conn::exec(c, sql, args).await,
        }
    }
    async fn rows(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbError> {
        match self {
            AnyConn::Sqlite(c) => Conn::rows(c, sql, args).await,
            AnyConn::Postgres(c) => Conn::rows(c, sql, args).await,
        }
    }
}
