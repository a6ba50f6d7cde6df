//! The merchant-money side of the store: settling business days, paying
//! out, and reading statements. Its own trait so that [`crate::Store`]
//! stays the payment flows' and this room's methods are found together;
//! every store implements both (the bodies are the same for each, reads on
//! a reader connection, writes through the store's `write`).

use std::future::Future;

use qrgate_core::Timestamp;

use crate::ops::{CardMovement, CardMovementPage, FundRow, StatementPage, TradeRow};
use crate::{MovementError, StoreError, model::*};

/// What merchant money persists and reads.
pub trait MoneyStore: Send + Sync {
    /// Settle one business day of one merchant (idempotent per merchant
    /// and day; days in order).
    fn settle_day(
        &self,
        job: SettleDay,
    ) -> impl Future<Output = Result<Settled, MovementError>> + Send;
    fn settlement(
        &self,
        merchant_id: &str,
        business_date: &str,
    ) -> impl Future<Output = Result<Option<Settlement>, StoreError>> + Send;
    /// A merchant's settlements from one date to another (inclusive),
    /// newest first.
    fn settlements(
        &self,
        merchant_id: &str,
        dates: (&str, &str),
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Settlement>, StoreError>> + Send;
    /// Merchant ids after `after`, in order (a page of them).
    fn merchant_ids(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    fn payout(&self, id: &str) -> impl Future<Output = Result<Option<Payout>, StoreError>> + Send;
    /// A merchant's payouts made in `[created.0, created.1)` (either end
    /// open), newest first.
    fn payouts_of(
        &self,
        merchant_id: &str,
        created: (Option<Timestamp>, Option<Timestamp>),
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Payout>, StoreError>> + Send;
    /// Pending payouts due for an attempt, oldest due first.
    fn payouts_due(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Payout>, StoreError>> + Send;
    /// Claim a pending payout's attempt until `until` (`false`: another
    /// node has it, or it moved on).
    fn claim_payout(
        &self,
        id: &str,
        attempts: i64,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A payout's step after the bank answered (`false`: it moved on
    /// meanwhile, nothing written).
    fn change_payout(
        &self,
        change: PayoutChange,
    ) -> impl Future<Output = Result<bool, MovementError>> + Send;
    /// A page of a merchant's trade statement rows.
    fn trade_rows(
        &self,
        q: &StatementPage,
    ) -> impl Future<Output = Result<Vec<TradeRow>, StoreError>> + Send;
    /// A page of a merchant's fund-flow statement rows.
    fn fund_rows(
        &self,
        q: &StatementPage,
    ) -> impl Future<Output = Result<Vec<FundRow>, StoreError>> + Send;
    /// Each of a merchant's three accounts' balance at `since` (one
    /// snapshot).
    fn opening_balances(
        &self,
        merchant_id: &str,
        since: Timestamp,
        accounts: [&str; 3],
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
    /// A page of a day's postings that move a card processor's clearing
    /// account (reconciliation's ledger side).
    fn card_movements(
        &self,
        q: &CardMovementPage,
    ) -> impl Future<Output = Result<Vec<CardMovement>, StoreError>> + Send;
    /// Every movement of one payment through a clearing account, any day.
    fn card_movements_of(
        &self,
        clearing: &qrgate_core::AccountId,
        payment_id: &str,
    ) -> impl Future<Output = Result<Vec<CardMovement>, StoreError>> + Send;
}

macro_rules! impl_money_store {
    ($ty:ty) => {
        impl MoneyStore for $ty {
            async fn settle_day(&self, job: SettleDay) -> Result<Settled, MovementError> {
                self.write(write::Settle(job)).await
            }
            async fn settlement(
                &self,
                merchant_id: &str,
                business_date: &str,
            ) -> Result<Option<Settlement>, StoreError> {
                ops::settlement(&mut self.reader().await?, merchant_id, business_date).await
            }
            async fn settlements(
                &self,
                merchant_id: &str,
                dates: (&str, &str),
                limit: i64,
            ) -> Result<Vec<Settlement>, StoreError> {
                ops::settlements(&mut self.reader().await?, merchant_id, dates, limit).await
            }
            async fn merchant_ids(
                &self,
                after: Option<&str>,
                limit: i64,
            ) -> Result<Vec<String>, StoreError> {
                ops::merchant_ids(&mut self.reader().await?, after, limit).await
            }
            async fn payout(&self, id: &str) -> Result<Option<Payout>, StoreError> {
                ops::payout(&mut self.reader().await?, id).await
            }
            async fn payouts_of(
                &self,
                merchant_id: &str,
                created: (Option<Timestamp>, Option<Timestamp>),
                limit: i64,
            ) -> Result<Vec<Payout>, StoreError> {
                ops::payouts_of(&mut self.reader().await?, merchant_id, created, limit).await
            }
            async fn payouts_due(
                &self,
                now: Timestamp,
                limit: i64,
            ) -> Result<Vec<Payout>, StoreError> {
                ops::payouts_due(&mut self.reader().await?, now, limit).await
            }
            async fn claim_payout(
                &self,
                id: &str,
                attempts: i64,
                now: Timestamp,
                until: Timestamp,
            ) -> Result<bool, StoreError> {
                self.write(write::ClaimPayout {
                    id: id.to_owned(),
                    attempts,
                    now,
                    until,
                })
                .await
                .map_err(store_err)
            }
            async fn change_payout(&self, change: PayoutChange) -> Result<bool, MovementError> {
                self.write(write::ChangePayout(change)).await
            }
            async fn trade_rows(&self, q: &StatementPage) -> Result<Vec<TradeRow>, StoreError> {
                ops::trade_rows(&mut self.reader().await?, q).await
            }
            async fn fund_rows(&self, q: &StatementPage) -> Result<Vec<FundRow>, StoreError> {
                ops::fund_rows(&mut self.reader().await?, q).await
            }
            async fn opening_balances(
                &self,
                merchant_id: &str,
                since: Timestamp,
                accounts: [&str; 3],
            ) -> Result<Vec<(String, i64)>, StoreError> {
                ops::opening_balances(&mut self.reader().await?, merchant_id, since, accounts).await
            }
            async fn card_movements(
                &self,
                q: &CardMovementPage,
            ) -> Result<Vec<CardMovement>, StoreError> {
                ops::card_movements(&mut self.reader().await?, q).await
            }
            async fn card_movements_of(
                &self,
                clearing: &qrgate_core::AccountId,
                payment_id: &str,
            ) -> Result<Vec<CardMovement>, StoreError> {
                ops::card_movements_of(&mut self.reader().await?, clearing, payment_id).await
            }
        }
    };
}

use crate::{AnyStore, PgStore, SqliteStore, ops, store_err, write};

impl_money_store!(SqliteStore);
impl_money_store!(PgStore);
impl_money_store!(AnyStore);
