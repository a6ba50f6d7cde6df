//! Signed-in sessions of the web pages.

use serde::{Deserialize, Serialize};

use qrgate_core::Timestamp;

/// A session as stored: the SHA-256 of its cookie's token, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSession {
    pub token_hash: String,
    /// The API key it was signed in with.
    pub key_id: String,
    /// The token every form of the session carries.
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Signed out.
    pub ended_at: Option<Timestamp>,
}

/// A session with what its key says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    pub session: WebSession,
    pub role: String,
    pub subject_id: Option<String>,
    pub key_revoked_at: Option<Timestamp>,
}
