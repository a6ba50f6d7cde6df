//! What auditors read: the audit chain and its log, and the check of the
//! books (the ledger, and every payment against its postings). Auditors
//! and admins only.

use qrgate_store::{AuditRow, AuditVerdict, LedgerCheck, Store};

use crate::{Error, Gateway, Principal, Role};

/// Most audit rows one page of the log returns.
pub const AUDIT_PAGE_MAX: i64 = 1000;

impl<S: Store> Gateway<S> {
    /// Walk the whole audit chain.
    pub async fn verify_audit(&self, p: &Principal) -> Result<AuditVerdict, Error> {
        p.require(&[Role::Auditor, Role::Admin])?;
        let store = self.store.clone();
        off_workers(async move { store.verify_audit().await }).await
    }

    /// Audit rows after `after`, in order, at most `limit` (1 to
    /// [`AUDIT_PAGE_MAX`]).
    pub async fn audit_log(
        &self,
        p: &Principal,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, Error> {
        p.require(&[Role::Auditor, Role::Admin])?;
        if !(1..=AUDIT_PAGE_MAX).contains(&limit) {
            return Err(Error::bad_request(
                "invalid_request",
                format!("limit must be 1 to {AUDIT_PAGE_MAX}"),
            ));
        }
        Ok(self.store.audit_rows(after, limit).await?)
    }

    /// The ledger and the payments checked against each other.
    pub async fn ledger_check(&self, p: &Principal) -> Result<LedgerCheck, Error> {
        p.require(&[Role::Auditor, Role::Admin])?;
        let store = self.store.clone();
        off_workers(async move { store.ledger_check().await }).await
    }
}

/// Run a scan of the whole books (hashing the audit chain, summing the
/// ledger) on the blocking pool, so it does not hold one of the async
/// workers that serve payments for as long as it takes.
async fn off_workers<T: Send + 'static>(
    scan: impl std::future::Future<Output = Result<T, qrgate_store::StoreError>> + Send + 'static,
) -> Result<T, Error> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(scan))
        .await
        .map_err(Error::internal)?
        .map_err(Error::from)
}
