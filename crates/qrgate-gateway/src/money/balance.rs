//! `GET /v1/balance`: a merchant's pending, available and in-payout
//! amounts per currency, read from its ledger accounts in one statement.

use serde::{Deserialize, Serialize};

use qrgate_store::Store;

use super::MerchantAccounts;
use crate::views::amount;
use crate::{Error, Gateway, Principal};

/// A merchant's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"object": "balance", "merchant_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "balances": [{"currency": "CNY", "pending": "99.40", "available": "1204.18", "in_payout": "0.00"}]}))]
pub struct BalanceView {
    pub object: String,
    pub merchant_id: String,
    /// One entry per currency the merchant holds money in.
    pub balances: Vec<CurrencyBalance>,
}

/// What a merchant holds in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurrencyBalance {
    pub currency: String,
    /// Received (net of fees) and not yet settled; refunds come out of it,
    /// so it can be negative, which is carried forward and never paid out.
    pub pending: String,
    /// Settled: what the next payout may pay.
    pub available: String,
    /// Sent to the merchant's bank, not yet confirmed by it.
    pub in_payout: String,
}

impl<S: Store> Gateway<S> {
    /// The balance of a merchant: a merchant key's own (`merchant_id` may
    /// be left out, and another merchant's is not found); admin and
    /// auditor keys name the merchant.
    pub async fn balance(
        &self,
        p: &Principal,
        merchant_id: Option<&str>,
    ) -> Result<BalanceView, Error> {
        let id = self.money_of(p, merchant_id)?;
        let currency = crate::CURRENCY;
        let acc = MerchantAccounts::of(id, currency);
        let rows = self
            .store
            .accounts(&[
                acc.pending.clone(),
                acc.available.clone(),
                acc.in_payout.clone(),
            ])
            .await?;
        if rows.is_empty() {
            return Err(Error::not_found("merchant", id));
        }
        let of = |account| {
            let minor = rows
                .iter()
                .find(|a| a.id == account)
                .map_or(0, |a| a.balance_minor);
            amount(minor, currency)
        };
        Ok(BalanceView {
            object: "balance".into(),
            merchant_id: id.to_owned(),
            balances: vec![CurrencyBalance {
                currency: currency.code().into(),
                pending: of(acc.pending),
                available: of(acc.available),
                in_payout: of(acc.in_payout),
            }],
        })
    }
}
