//! The web pages' side of the store: signed-in sessions (written as a
//! [`crate::Record`]), read with their key, ended, and purged once old.

use std::future::Future;

use qrgate_core::Timestamp;

use crate::{StoreError, model::*};

/// What the web pages' sessions need.
pub trait WebStore: Send + Sync {
    /// The session of a token's hash, with its key as it is now.
    fn web_session(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<SessionKey>, StoreError>> + Send;
    /// Sign a session out; `false` when it had ended already.
    fn end_web_session(
        &self,
        token_hash: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Forget sessions that ended or expired before `before`.
    fn purge_web_sessions(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

macro_rules! impl_web_store {
    ($ty:ty) => {
        impl WebStore for $ty {
            async fn web_session(
                &self,
                token_hash: &str,
            ) -> Result<Option<SessionKey>, StoreError> {
                ops::web_session(&mut self.reader().await?, token_hash).await
            }
            async fn end_web_session(
                &self,
                token_hash: &str,
                at: Timestamp,
            ) -> Result<bool, StoreError> {
                self.write(write::EndWebSession {
                    token_hash: token_hash.to_owned(),
                    at,
                })
                .await
                .map_err(store_err)
            }
            async fn purge_web_sessions(&self, before: Timestamp) -> Result<u64, StoreError> {
                self.write(write::PurgeWebSessions { before })
                    .await
                    .map_err(store_err)
            }
        }
    };
}

use crate::{AnyStore, PgStore, SqliteStore, ops, store_err, write};

impl_web_store!(SqliteStore);
impl_web_store!(PgStore);
impl_web_store!(AnyStore);
