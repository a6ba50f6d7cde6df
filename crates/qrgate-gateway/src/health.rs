//! What operators watch: whether the database answers, which store this is,
//! and what its write path has done (for `/readyz` and `/metrics`).

use qrgate_store::{AnyStore, Store};

pub use qrgate_store::{GroupCommits, MovementPaths, WriteStats};

use crate::{Error, Gateway, Kind};

/// The gateway as a deployment runs it: on whichever store its URL named.
pub type AnyGateway = Gateway<AnyStore>;

impl<S: Store> Gateway<S> {
    /// The store's name (`sqlite`, `postgres`) when its database answers.
    pub async fn ready(&self) -> Result<&'static str, Error> {
        match self.store.ping().await {
            Ok(()) => Ok(self.store.kind()),
            Err(e) => {
                tracing::warn!(error = %e, "not ready");
                Err(Error::new(
                    Kind::Unavailable,
                    "not_ready",
                    "the database does not answer",
                ))
            }
        }
    }

    /// The store's name (`sqlite`, `postgres`).
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }
}

impl AnyGateway {
    /// What the store's write path has done since it opened.
    pub fn write_stats(&self) -> WriteStats {
        self.store.write_stats()
    }

    /// The store's figures in Prometheus text format: which store, and what
    /// its write path has done.
    pub fn store_metrics(&self) -> String {
        let mut out = format!(
            "# HELP qrgate_store_info The store this gateway runs on.\n# TYPE qrgate_store_info gauge\nqrgate_store_info{{kind=\"{}\"}} 1\n",
            self.store_kind()
        );
        render_writes(&mut out, &self.write_stats());
        out
    }
}

/// The store's write-path counters in Prometheus text format.
fn render_writes(out: &mut String, writes: &WriteStats) {
    let mut counter = |name: &str, help: &str, value: String| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    };
    match writes {
        WriteStats::Sqlite(g) => {
            counter(
                "qrgate_sqlite_transactions_total",
                "Transactions the SQLite writer committed (group commit: many writes each).",
                g.transactions.to_string(),
            );
            counter(
                "qrgate_sqlite_writes_total",
                "Writes answered from those transactions, applied or refused.",
                g.writes.to_string(),
            );
            counter(
                "qrgate_sqlite_savepoint_passes_total",
                "Batches run again with a savepoint per write because one was refused.",
                g.savepoint_passes.to_string(),
            );
            counter(
                "qrgate_sqlite_commit_seconds_total",
                "Time the writer spent in COMMIT (WAL frames and fsync).",
                format!(
                    "{}.{:06}",
                    g.commit_micros / 1_000_000,
                    g.commit_micros % 1_000_000
                ),
            );
        }
        WriteStats::Postgres(p) => {
            out.push_str("# HELP qrgate_postgres_movements_total Movements written, by path: one statement, or step by step in a transaction.\n# TYPE qrgate_postgres_movements_total counter\n");
            out.push_str(&format!(
                "qrgate_postgres_movements_total{{path=\"one_statement\"}} {}\nqrgate_postgres_movements_total{{path=\"step_by_step\"}} {}\n",
                p.one_statement, p.step_by_step
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_counters_render_as_prometheus_text() {
        let mut out = String::new();
        render_writes(
            &mut out,
            &WriteStats::Sqlite(GroupCommits {
                transactions: 3,
                writes: 40,
                savepoint_passes: 1,
                commit_micros: 2_000_345,
            }),
        );
        assert!(
            out.contains("\nqrgate_sqlite_transactions_total 3\n"),
            "{out}"
        );
        assert!(out.contains("\nqrgate_sqlite_writes_total 40\n"), "{out}");
        assert!(
            out.contains("\nqrgate_sqlite_savepoint_passes_total 1\n"),
            "{out}"
        );
        assert!(
            out.contains("\nqrgate_sqlite_commit_seconds_total 2.000345\n"),
            "{out}"
        );

        let mut out = String::new();
        render_writes(
            &mut out,
            &WriteStats::Postgres(MovementPaths {
                one_statement: 7,
                step_by_step: 2,
            }),
        );
        assert!(
            out.contains("qrgate_postgres_movements_total{path=\"one_statement\"} 7\n"),
            "{out}"
        );
        assert!(
            out.contains("qrgate_postgres_movements_total{path=\"step_by_step\"} 2\n"),
            "{out}"
        );
    }
}
