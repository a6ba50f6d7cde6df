//! Signed-in sessions of the web pages. An API key signs in once; the
//! browser then holds a random token (in an `HttpOnly` cookie, set by the
//! edge) and every page it opens acts with that key's role and subject, as
//! the API does with the key itself. Only the token's SHA-256 is stored.
//! A session ends when it expires (`web_session_minutes`), when it signs
//! out, or at once when its key is revoked. Each session has a CSRF token
//! that every form it sends must carry. Sign-ins and sign-outs are in the
//! audit chain.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use serde_json::json;

use qrgate_core::Timestamp;
use qrgate_store::{Movement, Record, Store, WebSession};

use crate::trail::{self, Action};
use crate::{Error, Gateway, Kind, Principal, Role};

/// A new session: the token for the cookie (shown once) and the session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub session: Session,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    /// What every form of the session carries.
    pub csrf: String,
    pub expires_at: Timestamp,
}

impl Session {
    /// Whether `sent` is this session's CSRF token. Their SHA-256 digests
    /// are compared, so how long the comparison takes says nothing about
    /// the token.
    pub fn csrf_matches(&self, sent: &str) -> bool {
        use ring::digest::{SHA256, digest};
        digest(&SHA256, self.csrf.as_bytes()).as_ref() == digest(&SHA256, sent.as_bytes()).as_ref()
    }
}

fn signed_out() -> Error {
    Error::new(
        Kind::Unauthorized,
        "session_ended",
        "not signed in, or the session ended (expired, signed out, or its key revoked): sign in again",
    )
}

impl<S: Store> Gateway<S> {
    /// Sign in with an API key's secret.
    pub async fn sign_in(&self, secret: &str) -> Result<SignedIn, Error> {
        let p = self.authenticate(secret.trim()).await?;
        let token = self.random_text(32)?;
        let csrf = self.random_text(24)?;
        let now = self.now();
        let minutes = self.config.web_session_minutes;
        let expires_at = now
            .checked_add_millis(minutes.saturating_mul(60_000))
            .unwrap_or(now);
        let mut m = Movement::new(now);
        m.records.push(Record::WebSession(WebSession {
            token_hash: qrgate_store::sha256_hex(token.as_bytes()),
            key_id: p.key_id.clone(),
            csrf: csrf.clone(),
            created_at: now,
            expires_at,
            ended_at: None,
        }));
        m.audit = Some(trail::entry(
            Action::WebSignedIn,
            p.key_id.clone(),
            (&p).into(),
            json!({ "role": p.role.as_str(), "expires_at": expires_at.to_rfc3339() }),
        ));
        self.store.apply(m).await?;
        Ok(SignedIn {
            token,
            session: Session {
                principal: p,
                csrf,
                expires_at,
            },
        })
    }

    /// The live session of a cookie's token; 401 `session_ended` when
    /// there is none.
    pub async fn web_session(&self, token: &str) -> Result<Session, Error> {
        let hash = qrgate_store::sha256_hex(token.as_bytes());
        let s = self
            .store
            .web_session(&hash)
            .await?
            .ok_or_else(signed_out)?;
        let live = s.session.ended_at.is_none()
            && s.session.expires_at > self.now()
            && s.key_revoked_at.is_none();
        if !live {
            return Err(signed_out());
        }
        let role = Role::parse(&s.role).ok_or_else(|| {
            Error::internal(format!("key {} has role {:?}", s.session.key_id, s.role))
        })?;
        Ok(Session {
            principal: Principal {
                key_id: s.session.key_id,
                role,
                subject: s.subject_id,
            },
            csrf: s.session.csrf,
            expires_at: s.session.expires_at,
        })
    }

    /// Sign a session out (its token stops working here and on every
    /// other node at once).
    pub async fn sign_out(&self, token: &str) -> Result<(), Error> {
        let session = self.web_session(token).await?;
        let hash = qrgate_store::sha256_hex(token.as_bytes());
        if self.store.end_web_session(&hash, self.now()).await? {
            let p = &session.principal;
            let audit = trail::entry(
                Action::WebSignedOut,
                p.key_id.clone(),
                p.into(),
                json!({ "role": p.role.as_str() }),
            );
            let mut m = Movement::new(self.now());
            m.audit = Some(audit);
            self.store.apply(m).await?;
        }
        Ok(())
    }

    /// `n` random bytes as unpadded base64url.
    fn random_text(&self, n: usize) -> Result<String, Error> {
        let mut b = vec![0u8; n];
        self.rng.fill(&mut b).map_err(Error::internal)?;
        Ok(URL_SAFE_NO_PAD.encode(b))
    }
}
