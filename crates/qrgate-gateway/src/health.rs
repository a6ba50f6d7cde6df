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
}
