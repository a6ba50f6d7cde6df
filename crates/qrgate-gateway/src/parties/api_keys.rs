//! API keys: created for a role and a subject, shown once and stored
//! hashed, revoked; and authentication of a request's key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use serde::Serialize;
use serde_json::json;

use qrgate_store::*;

use super::*;
use crate::fresh::CachedKey;
use crate::trail::Action;
use crate::{Error, Gateway, Kind, Principal, Role};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "key_3vW1aZ9qP0s", "object": "api_key", "role": "merchant", "subject_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "secret": "qgk_merchant_NlHDhdYqrgkrqCpQ4WNYQewrJef3wBiS", "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct ApiKeyCreated {
    pub id: String,
    pub object: &'static str,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    /// Shown once; only its hash is stored.
    pub secret: String,
    pub created_at: String,
}

/// Hex SHA-256 of an API key secret, as stored.
pub fn key_hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// The caller a key names.
pub(super) fn principal(k: CachedKey) -> Result<Principal, Error> {
    let role = Role::parse(&k.role)
        .ok_or_else(|| Error::internal(format!("key {} has role {:?}", k.key_id, k.role)))?;
    Ok(Principal {
        key_id: k.key_id,
        role,
        subject: k.subject_id,
    })
}

impl<S: Store> Gateway<S> {
    /// Issue an API key. Admin keys may be made only by admins (and at first start).
    pub async fn create_api_key(
        &self,
        p: Option<&Principal>,
        role: Role,
        subject: Option<String>,
    ) -> Result<ApiKeyCreated, Error> {
        if let Some(p) = p {
            p.require(&[Role::Admin])?;
        }
        match (role, &subject) {
            (Role::Merchant, Some(m)) => {
                self.store
                    .merchant(m)
                    .await?
                    .ok_or_else(|| Error::not_found("merchant", m))?;
            }
            (Role::Consumer, Some(c)) => {
                self.store
                    .customer(c)
                    .await?
                    .ok_or_else(|| Error::not_found("customer", c))?;
            }
            (Role::Merchant | Role::Consumer, None) => {
                return Err(Error::bad_request(
                    "invalid_request",
                    "merchant and consumer keys need subject_id (the merchant or customer id)",
                ));
            }
            (Role::Admin | Role::Auditor, Some(_)) => {
                return Err(Error::bad_request(
                    "invalid_request",
                    "admin and auditor keys act for no single subject; omit subject_id",
                ));
            }
            _ => {}
        }
        let mut secret = [0_u8; 24];
        self.rng.fill(&mut secret).map_err(Error::internal)?;
        let secret = format!("qgk_{}_{}", role.as_str(), URL_SAFE_NO_PAD.encode(secret));
        let mut idb = [0_u8; 9];
        self.rng.fill(&mut idb).map_err(Error::internal)?;
        let id = format!("key_{}", URL_SAFE_NO_PAD.encode(idb));
        let now = self.now();
        let mut m = Movement::new(now);
        m.records.push(Record::ApiKey(ApiKey {
            id: id.clone(),
            key_hash: key_hash(&secret),
            role: role.as_str().into(),
            subject_id: subject.clone(),
            created_at: now,
            revoked_at: None,
        }));
        // The secret never enters the audit log; the key id and role do.
        m.audit = Some(admin_audit(
            p,
            Action::ApiKeyCreated,
            &id,
            json!({ "role": role.as_str(), "subject_id": subject }),
        ));
        self.store.apply(m).await?;
        Ok(ApiKeyCreated {
            id,
            object: "api_key",
            role: role.as_str().into(),
            subject_id: subject,
            secret,
            created_at: now.to_rfc3339(),
        })
    }

    pub async fn revoke_api_key(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(&[Role::Admin])?;
        let audit = admin_audit(Some(p), Action::ApiKeyRevoked, id, json!({}));
        let revoked = self.store.revoke_api_key(id, self.now(), audit).await;
        // After the write, so a read from before it is not kept either.
        self.keys.invalidate();
        if !revoked? {
            return Err(Error::not_found("active API key", id));
        }
        Ok(())
    }

    /// Who holds this secret; `unauthorized` for unknown or revoked keys.
    /// Always asks the store.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal, Error> {
        self.read_key(&key_hash(secret)).await
    }

    /// [`authenticate`](Self::authenticate) for `POST /v1/payments`: the
    /// key may come from a copy up to a second old. Only for routes whose
    /// every write is a payment movement naming the key in
    /// `Movement::live_api_key`, which checks again that it is unrevoked,
    /// so a key revoked on another gateway a moment ago still moves no money.
    pub async fn authenticate_for_payment(&self, secret: &str) -> Result<Principal, Error> {
        let hash = key_hash(secret);
        match self.keys.get(&hash, self.now()) {
            Some(k) => principal(k),
            None => self.read_key(&hash).await,
        }
    }

    pub(super) async fn read_key(&self, hash: &str) -> Result<Principal, Error> {
        let unauthorized = || {
            Error::new(
                Kind::Unauthorized,
                "unauthorized",
                "missing, unknown or revoked API key: send Authorization: Bearer <key>",
            )
            .with_rule("QG-AUTH")
        };
        let generation = self.keys.generation();
        let read_at = self.now();
        let k = self
            .store
            .api_key_by_hash(hash)
            .await?
            .ok_or_else(unauthorized)?;
        if k.revoked_at.is_some() {
            return Err(Error::api_key_revoked());
        }
        let k = CachedKey {
            key_id: k.id,
            role: k.role,
            subject_id: k.subject_id,
        };
        self.keys.put(hash, k.clone(), read_at, generation);
        principal(k)
    }
}
