//! Numbered migrations, the same numbers and names for both databases,
//! embedded in the binary and applied at start-up (and by `qrgate migrate`).
//! An applied migration whose text changed is refused, not re-run.

use crate::audit::sha256_hex;
use crate::db::{Arg, Conn};
use crate::error::StoreError;

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migrations {
    ($dialect:literal: $(($v:literal, $file:literal, $name:literal)),* $(,)?) => {
        &[$(Migration {
            version: $v,
            name: $name,
            sql: include_str!(concat!("../../../migrations/", $dialect, "/", $file, "_", $name, ".sql")),
        }),*]
    };
}

// Files are `NNNN_name.sql`, the same numbers and names in both directories.
pub(crate) const SQLITE: &[Migration] = migrations!("sqlite": (1, "0001", "ledger_and_movements"), (2, "0002", "append_only"), (3, "0003", "parties_and_codes"), (4, "0004", "webhook_deliveries"), (5, "0005", "customer_credentials"), (6, "0006", "certificates"), (7, "0007", "blocks"), (8, "0008", "cards"), (9, "0009", "otp"), (10, "0010", "audit_queue"), (11, "0011", "one_statement_movements"), (12, "0012", "waiting_payments"), (13, "0013", "endpoint_lifecycle"), (14, "0014", "credential_lifecycle"), (15, "0015", "one_signer"), (16, "0016", "gateway_secrets"), (17, "0017", "merchant_numbers"), (18, "0018", "merchant_fees"), (19, "0019", "settlement"), (20, "0020", "payouts"), (21, "0021", "events"), (22, "0022", "refund_numbers_and_metadata"), (23, "0023", "reconciliation"), (24, "0024", "complaints"), (25, "0025", "reviews"), (26, "0026", "complaint_photos_and_code_suspension"), (27, "0027", "web_sessions"));
pub(crate) const POSTGRES: &[Migration] = migrations!("postgres": (1, "0001", "ledger_and_movements"), (2, "0002", "append_only"), (3, "0003", "parties_and_codes"), (4, "0004", "webhook_deliveries"), (5, "0005", "customer_credentials"), (6, "0006", "certificates"), (7, "0007", "blocks"), (8, "0008", "cards"), (9, "0009", "otp"), (10, "0010", "audit_queue"), (11, "0011", "one_statement_movements"), (12, "0012", "waiting_payments"), (13, "0013", "endpoint_lifecycle"), (14, "0014", "credential_lifecycle"), (15, "0015", "one_signer"), (16, "0016", "gateway_secrets"), (17, "0017", "merchant_numbers"), (18, "0018", "merchant_fees"), (19, "0019", "settlement"), (20, "0020", "payouts"), (21, "0021", "events"), (22, "0022", "refund_numbers_and_metadata"), (23, "0023", "reconciliation"), (24, "0024", "complaints"), (25, "0025", "reviews"), (26, "0026", "complaint_photos_and_code_suspension"), (27, "0027", "web_sessions"));

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS qrgate_migrations (\
    version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<(i64, String)>,
    pub already: usize,
}

/// Apply pending migrations. `run_script` executes a multi-statement script
/// inside the caller's transaction handling.
pub(crate) async fn pending<C: Conn>(
    c: &mut C,
    all: &'static [Migration],
) -> Result<Vec<&'static Migration>, StoreError> {
    c.exec(CREATE_TABLE, &[]).await?;
    let rows = c
        .rows(
            "SELECT version, name, checksum FROM qrgate_migrations ORDER BY version",
            &[],
        )
        .await?;
    let mut out = Vec::new();
    for m in all {
        let sum = sha256_hex(m.sql.as_bytes());
        match rows
            .iter()
            .find(|r| r.i64("version").ok() == Some(m.version))
        {
            Some(r) => {
                if r.str("checksum")? != sum {
                    return Err(StoreError::Migration {
                        version: m.version,
                        name: m.name.into(),
                        problem: "was changed after it was applied; add a new migration instead"
                            .into(),
                    });
                }
            }
            None => out.push(m),
        }
    }
    if let Some(r) = rows
        .iter()
        .find(|r| !all.iter().any(|m| Some(m.version) == r.i64("version").ok()))
    {
        return Err(StoreError::Migration {
            version: r.i64("version")?,
            name: r.str("name")?,
            problem: "is applied in the database but unknown to this binary (is the binary older than the database?)".into(),
        });
    }
    Ok(out)
}

pub(crate) async fn record<C: Conn>(
    c: &mut C,
    m: &Migration,
    at_ms: i64,
) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO qrgate_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
        &[Arg::I64(m.version), Arg::Str(m.name), Arg::Str(&sha256_hex(m.sql.as_bytes())), Arg::I64(at_ms)],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dialect: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations")
            .join(dialect);
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn every_migration_file_is_embedded_in_both_dialects() {
        let names = |all: &[Migration]| {
            all.iter()
                .map(|m| format!("{:04}_{}.sql", m.version, m.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(files("sqlite"), names(SQLITE));
        assert_eq!(files("postgres"), names(POSTGRES));
        assert_eq!(names(SQLITE), names(POSTGRES));
        assert!(
            SQLITE
                .iter()
                .enumerate()
                .all(|(i, m)| m.version == i as i64 + 1)
        );
    }
}
