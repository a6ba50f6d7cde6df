//! The complaints side of the store (and the operator's review queue):
//! reading complaints and their steps, flagged payments,
//! what the sweeper and the figures need, and giving an aged instant
//! refund back to its payer's cap. Filing and moving a complaint are
//! writes of a [`crate::Movement`] (with the refund they make, if any).

use std::future::Future;

use qrgate_core::Timestamp;

use crate::{StoreError, model::*};

/// What complaints persist and read.
pub trait ComplaintStore: Send + Sync {
    fn complaint(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Complaint>, StoreError>> + Send;
    /// A complaint's steps, in order.
    fn complaint_steps(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<ComplaintStep>, StoreError>> + Send;
    /// A page of complaints, newest first, and whether more follow.
    fn complaints(
        &self,
        q: &ComplaintQuery,
    ) -> impl Future<Output = Result<(Vec<Complaint>, bool), StoreError>> + Send;
    /// Complaints whose party's time is up at `now`, longest overdue first.
    fn complaints_due(
        &self,
        now: Timestamp,
        after: Option<(Timestamp, &str)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Complaint>, StoreError>> + Send;
    /// Complaints with a card refund the processor has not confirmed.
    fn complaints_processor_pending(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Complaint>, StoreError>> + Send;
    /// Ask the processor for refund `number` of complaint `id` again at `next`.
    fn defer_processor_retry(
        &self,
        id: &str,
        number: &str,
        next: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The processor confirmed refund `number` of complaint `id`.
    fn clear_processor_pending(
        &self,
        id: &str,
        number: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A payer's instant refunds filed before `before` still counted in
    /// their cap.
    fn capped_instant_refunds(
        &self,
        customer_id: &str,
        before: Timestamp,
    ) -> impl Future<Output = Result<Vec<Complaint>, StoreError>> + Send;
    /// Give an aged instant refund back to its payer's cap (once: `false`
    /// when it was already).
    fn release_instant_cap(
        &self,
        complaint: Complaint,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Complaints waiting for the operator and not parked past `now`, the
    /// nearest deadline first.
    /// (`filed_before`: only those filed by then.)
    fn complaints_to_decide(
        &self,
        merchant_id: Option<&str>,
        now_and_filed_before: (Timestamp, Timestamp),
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Complaint>, StoreError>> + Send;
    /// Complaints of a fraud reason since `since` without a review
    /// decision, oldest first.
    fn fraud_reports(
        &self,
        merchant_id: Option<&str>,
        filed: (Timestamp, Timestamp),
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Complaint>, StoreError>> + Send;
    /// Flagged succeeded payments since `since` without a decision, oldest
    /// first.
    fn flagged_payments(
        &self,
        merchant_id: Option<&str>,
        made: (Timestamp, Timestamp),
        after: Option<(Timestamp, &str)>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Payment>, StoreError>> + Send;
    /// Add a photo to its payer's unresolved complaint under the cap;
    /// `false` when nothing was added (the caller reads again to say why).
    fn add_complaint_photo(
        &self,
        photo: NewPhoto,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A complaint's photos, in order, without their bytes.
    fn complaint_photos(
        &self,
        complaint_id: &str,
    ) -> impl Future<Output = Result<Vec<ComplaintPhoto>, StoreError>> + Send;
    /// One photo of a complaint and its bytes.
    fn complaint_photo(
        &self,
        complaint_id: &str,
        seq: i64,
    ) -> impl Future<Output = Result<Option<(ComplaintPhoto, Vec<u8>)>, StoreError>> + Send;
    /// Live static codes that enough payers reported tampered since
    /// `since` but that are not suspended: `(code, merchant)`.
    fn codes_due_for_suspension(
        &self,
        since: Timestamp,
        reporters: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// Static codes suspended after reports of tampering and not revoked,
    /// oldest suspension first.
    fn suspended_static_codes(
        &self,
        merchant_id: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StaticCode>, StoreError>> + Send;
    /// How many payments succeeded in `[from, to)`, of one merchant or all.
    fn succeeded_payments(
        &self,
        merchant_id: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

macro_rules! impl_complaint_store {
    ($ty:ty) => {
        impl ComplaintStore for $ty {
            async fn complaint(&self, id: &str) -> Result<Option<Complaint>, StoreError> {
                ops::complaint(&mut self.reader().await?, id).await
            }
            async fn complaint_steps(&self, id: &str) -> Result<Vec<ComplaintStep>, StoreError> {
                ops::complaint_steps(&mut self.reader().await?, id).await
            }
            async fn complaints(
                &self,
                q: &ComplaintQuery,
            ) -> Result<(Vec<Complaint>, bool), StoreError> {
                ops::complaints(&mut self.reader().await?, q).await
            }
            async fn complaints_due(
                &self,
                now: Timestamp,
                after: Option<(Timestamp, &str)>,
                limit: i64,
            ) -> Result<Vec<Complaint>, StoreError> {
                ops::complaints_due(&mut self.reader().await?, now, after, limit).await
            }
            async fn complaints_processor_pending(
                &self,
                now: Timestamp,
                limit: i64,
            ) -> Result<Vec<Complaint>, StoreError> {
                ops::complaints_processor_pending(&mut self.reader().await?, now, limit).await
            }
            async fn defer_processor_retry(
                &self,
                id: &str,
                number: &str,
                next: Timestamp,
            ) -> Result<bool, StoreError> {
                self.write(write::DeferProcessorRetry {
                    id: id.to_owned(),
                    number: number.to_owned(),
                    next,
                })
                .await
                .map_err(store_err)
            }
            async fn clear_processor_pending(
                &self,
                id: &str,
                number: &str,
            ) -> Result<bool, StoreError> {
                self.write(write::ClearProcessorPending {
                    id: id.to_owned(),
                    number: number.to_owned(),
                })
                .await
                .map_err(store_err)
            }
            async fn capped_instant_refunds(
                &self,
                customer_id: &str,
                before: Timestamp,
            ) -> Result<Vec<Complaint>, StoreError> {
                ops::capped_instant_refunds(&mut self.reader().await?, customer_id, before).await
            }
            async fn release_instant_cap(
                &self,
                complaint: Complaint,
                at: Timestamp,
            ) -> Result<bool, StoreError> {
                self.write(write::ReleaseInstantCap { complaint, at })
                    .await
                    .map_err(store_err)
            }
            async fn complaints_to_decide(
                &self,
                merchant_id: Option<&str>,
                now_and_filed_before: (Timestamp, Timestamp),
                limit: i64,
            ) -> Result<Vec<Complaint>, StoreError> {
                ops::complaints_to_decide(
                    &mut self.reader().await?,
                    merchant_id,
                    now_and_filed_before,
                    limit,
                )
                .await
            }
            async fn add_complaint_photo(
                &self,
                photo: NewPhoto,
                at: Timestamp,
            ) -> Result<bool, StoreError> {
                self.write(write::AddPhoto { photo, at })
                    .await
                    .map_err(store_err)
            }
            async fn complaint_photos(
                &self,
                complaint_id: &str,
            ) -> Result<Vec<ComplaintPhoto>, StoreError> {
                ops::complaint_photos(&mut self.reader().await?, complaint_id).await
            }
            async fn complaint_photo(
                &self,
                complaint_id: &str,
                seq: i64,
            ) -> Result<Option<(ComplaintPhoto, Vec<u8>)>, StoreError> {
                ops::complaint_photo(&mut self.reader().await?, complaint_id, seq).await
            }
            async fn codes_due_for_suspension(
                &self,
                since: Timestamp,
                reporters: i64,
                limit: i64,
            ) -> Result<Vec<(String, String)>, StoreError> {
                ops::codes_due_for_suspension(&mut self.reader().await?, since, reporters, limit)
                    .await
            }
            async fn suspended_static_codes(
                &self,
                merchant_id: Option<&str>,
                limit: i64,
            ) -> Result<Vec<StaticCode>, StoreError> {
                ops::suspended_static_codes(&mut self.reader().await?, merchant_id, limit).await
            }
            async fn fraud_reports(
                &self,
                merchant_id: Option<&str>,
                filed: (Timestamp, Timestamp),
                limit: i64,
            ) -> Result<Vec<Complaint>, StoreError> {
                ops::fraud_reports(&mut self.reader().await?, merchant_id, filed, limit).await
            }
            async fn flagged_payments(
                &self,
                merchant_id: Option<&str>,
                made: (Timestamp, Timestamp),
                after: Option<(Timestamp, &str)>,
                limit: i64,
            ) -> Result<Vec<Payment>, StoreError> {
                ops::flagged_payments(&mut self.reader().await?, merchant_id, made, after, limit)
                    .await
            }
            async fn succeeded_payments(
                &self,
                merchant_id: Option<&str>,
                from: Timestamp,
                to: Timestamp,
            ) -> Result<i64, StoreError> {
                ops::succeeded_payments(&mut self.reader().await?, merchant_id, from, to).await
            }
        }
    };
}

use crate::{AnyStore, PgStore, SqliteStore, ops, store_err, write};

impl_complaint_store!(SqliteStore);
impl_complaint_store!(PgStore);
impl_complaint_store!(AnyStore);
