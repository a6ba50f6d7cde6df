//! A merchant's money after it was paid: where it stands (`balance`) and
//! each business day settled (`settlement`).
//!
//! A merchant has three ledger accounts, made when it is onboarded:
//! pending (`settlement:<merchant>:CNY`: received net of fees, not yet
//! settled; refunds come out of it, so it may go below zero and is then
//! carried forward), available (`available:…`: settled, may be paid out)
//! and in payout (`payout:…`: sent to the merchant's bank, not yet
//! confirmed). Every figure shown here is read from those accounts, never
//! from a counter kept beside them.

mod balance;
mod events;
mod payouts;
mod reconcile;
mod settlement;
mod statements;

pub use balance::{BalanceView, CurrencyBalance};
pub use events::{EventList, EventListQuery, EventView};
pub use payouts::{PayoutListQuery, PayoutView};
pub use qrgate_processor::bank::{
    SANDBOX_FAILS_ONCE, SANDBOX_PAYS, SANDBOX_REFUSES, SANDBOX_RETURNS, SANDBOX_SILENT,
};
pub use reconcile::{Finding, Reconciliation};
pub use settlement::{CountAmount, SettlementRun, SettlementView};
pub use statements::{Statement, StatementKind, StatementReader};

use qrgate_core::{AccountId, Currency};

/// Merchants read per page by a run over all of them (settlement, payouts).
const MERCHANT_PAGE: i64 = 200;

/// Every merchant's id, a page at a time, in id order (a run over all of
/// them).
#[derive(Default)]
struct MerchantPages {
    after: Option<String>,
}

impl MerchantPages {
    /// The next page; empty at the end.
    async fn next<S: qrgate_store::Store>(
        &mut self,
        store: &S,
    ) -> Result<Vec<String>, crate::Error> {
        let ids = store
            .merchant_ids(self.after.as_deref(), MERCHANT_PAGE)
            .await?;
        self.after = ids.last().cloned().or(self.after.take());
        Ok(ids)
    }
}

/// The three accounts of a merchant's money in one currency.
pub(crate) struct MerchantAccounts {
    pub(crate) pending: AccountId,
    pub(crate) available: AccountId,
    pub(crate) in_payout: AccountId,
    /// The gateway's fees from this merchant.
    pub(crate) fees: AccountId,
}

impl MerchantAccounts {
    pub(crate) fn of(merchant: &str, currency: Currency) -> MerchantAccounts {
        MerchantAccounts {
            pending: AccountId::settlement(merchant, currency),
            available: AccountId::available(merchant, currency),
            in_payout: AccountId::in_payout(merchant, currency),
            fees: AccountId::fees(merchant, currency),
        }
    }
}
