//! [`AnyStore`]: the store a URL names, opened and migrated; its write-path
//! figures; and database URLs made fit to print.

use qrgate_core::Timestamp;

use crate::write::{Job, Prepared};

use crate::*;

/// The store a URL names: `sqlite://PATH` or `postgres://…`.
#[derive(Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// What a store's write path has done since it opened, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStats {
    Sqlite(GroupCommits),
    Postgres(MovementPaths),
}

impl AnyStore {
    pub fn write_stats(&self) -> WriteStats {
        match self {
            AnyStore::Sqlite(s) => WriteStats::Sqlite(s.group_commits()),
            AnyStore::Postgres(s) => WriteStats::Postgres(s.movement_paths()),
        }
    }

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
                url: redact_url(url),
                why: "expected sqlite://PATH or postgres://USER@HOST/DB".into(),
            })
        }
    }

    pub(crate) async fn reader(&self) -> Result<db::AnyConn, StoreError> {
        Ok(match self {
            AnyStore::Sqlite(s) => db::AnyConn::Sqlite(s.reader().await?),
            AnyStore::Postgres(s) => db::AnyConn::Postgres(s.reader().await?),
        })
    }

    pub(crate) async fn write<J: Job>(&self, job: J) -> Result<J::Out, MovementError> {
        match self {
            AnyStore::Sqlite(s) => s.write(job).await,
            AnyStore::Postgres(s) => s.write(job).await,
        }
    }

    pub(crate) async fn apply(&self, m: Prepared) -> Result<Applied, MovementError> {
        match self {
            AnyStore::Sqlite(s) => s.apply(m).await,
            AnyStore::Postgres(s) => s.apply(m).await,
        }
    }
}

/// A database URL fit to print or log: the password (in the user info, or
/// a `password=` parameter) is replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let auth_end = out[auth_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..auth_end].rfind('@') {
            let userinfo = auth_start..auth_start + at;
            if let Some(colon) = out[userinfo.clone()].find(':') {
                out.replace_range(auth_start + colon + 1..auth_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn passwords_never_print() {
        for (url, shown) in [
            (
                "postgres://app:s3cr%40t@db:5432/qrgate",
                "postgres://app:***@db:5432/qrgate",
            ),
            (
                "postgres://app@db/qrgate?password=hunter2&sslmode=require",
                "postgres://app@db/qrgate?password=***&sslmode=require",
            ),
            (
                "postgresql://u:p@h/d?PASSWORD=x",
                "postgresql://u:***@h/d?PASSWORD=***",
            ),
            ("sqlite://./qrgate.db", "sqlite://./qrgate.db"),
            ("postgres://db/qrgate", "postgres://db/qrgate"),
        ] {
            assert_eq!(redact_url(url), shown);
            assert!(!redact_url(url).contains("s3cr") && !redact_url(url).contains("hunter2"));
        }
    }
}
