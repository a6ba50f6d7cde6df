//! Ledger account ids. An id names its kind, its owner and its currency
//! (`wallet:<customer>:CNY`), so an entry cannot post a customer's money to
//! a merchant's account by a slip of a format string: the only way to make
//! one is a constructor below.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Currency;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    /// A customer's wallet (never negative).
    pub fn wallet(customer: &str, currency: Currency) -> AccountId {
        AccountId(format!("wallet:{customer}:{currency}"))
    }

    /// A merchant's pending account: what it received (net of fees) and
    /// was not settled yet. Refunds are taken from it, so it may go below
    /// zero; a negative balance is carried forward, never paid out. (Its
    /// id keeps the name it had before settlement existed.)
    pub fn settlement(merchant: &str, currency: Currency) -> AccountId {
        AccountId(format!("settlement:{merchant}:{currency}"))
    }

    /// A merchant's available account: settled money that may be paid
    /// out (never negative).
    pub fn available(merchant: &str, currency: Currency) -> AccountId {
        AccountId(format!("available:{merchant}:{currency}"))
    }

    /// A merchant's money on its way to its bank: paid out, not yet
    /// confirmed by the bank (never negative).
    pub fn in_payout(merchant: &str, currency: Currency) -> AccountId {
        AccountId(format!("payout:{merchant}:{currency}"))
    }

    /// The gateway's fee revenue from one merchant (never negative: a fee
    /// returned was charged first). One per merchant, so payments to
    /// different merchants never meet on one row; the operator's revenue
    /// is the sum of the `fees:` accounts.
    pub fn fees(merchant: &str, currency: Currency) -> AccountId {
        AccountId(format!("fees:{merchant}:{currency}"))
    }

    /// Where payouts leave for merchants' banks: the outside world.
    pub fn bank_clearing(bank: &str, currency: Currency) -> AccountId {
        AccountId(format!("clearing:bank:{bank}:{currency}"))
    }

    /// Where top-ups come from and refunds of them go: the outside world.
    pub fn external_clearing(currency: Currency) -> AccountId {
        AccountId(format!("clearing:external:{currency}"))
    }

    /// A card processor's clearing account: card money enters and leaves here.
    pub fn card_clearing(processor: &str, currency: Currency) -> AccountId {
        AccountId(format!("clearing:card:{processor}:{currency}"))
    }

    /// The platform's goodwill: what it pays out of its own pocket (an
    /// instant complaint refund the merchant should not bear). Its balance
    /// is negative by what goodwill has cost.
    pub fn goodwill(currency: Currency) -> AccountId {
        AccountId(format!("goodwill:{currency}"))
    }

    /// An id as the database holds it (it was made by a constructor).
    pub fn stored(id: String) -> AccountId {
        AccountId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_the_stored_format() {
        let c = Currency::CNY;
        assert_eq!(AccountId::wallet("cus_1", c).as_str(), "wallet:cus_1:CNY");
        assert_eq!(
            AccountId::settlement("mch_1", c).as_str(),
            "settlement:mch_1:CNY"
        );
        assert_eq!(
            AccountId::available("mch_1", c).as_str(),
            "available:mch_1:CNY"
        );
        assert_eq!(
            AccountId::in_payout("mch_1", c).as_str(),
            "payout:mch_1:CNY"
        );
        assert_eq!(AccountId::fees("mch_1", c).as_str(), "fees:mch_1:CNY");
        assert_eq!(
            AccountId::bank_clearing("sandbox", c).as_str(),
            "clearing:bank:sandbox:CNY"
        );
        assert_eq!(
            AccountId::external_clearing(c).as_str(),
            "clearing:external:CNY"
        );
        assert_eq!(
            AccountId::card_clearing("sandbox", c).as_str(),
            "clearing:card:sandbox:CNY"
        );
        assert_eq!(
            serde_json::to_value(AccountId::wallet("c", c)).unwrap(),
            serde_json::json!("wallet:c:CNY")
        );
    }
}
