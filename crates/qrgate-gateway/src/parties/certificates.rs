//! Digital certificates: an admin enrols a customer's certificate key, the
//! strongest element of a level-A confirmation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::json;

use qrgate_core::state::CredentialStatus;
use qrgate_store::*;

use super::*;
use crate::trail::Action;
use crate::{Error, Gateway, Kind, Principal, Role};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "crt_aaaaaaaaaaaaaaaaaaaaaaaaae", "object": "certificate", "customer_id": "cus_hfrymmz2r26kb3zen56ofpia2u", "status": "active", "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct CertificateView {
    pub id: String,
    pub object: &'static str,
    pub customer_id: String,
    pub status: String,
    pub created_at: String,
}

impl<S: Store> Gateway<S> {
    /// Enroll a customer's digital-certificate key (admin: the operator
    /// issued the certificate after checking the customer's identity). Its
    /// signature over a payment's details is the element of risk level A.
    pub async fn enroll_certificate(
        &self,
        p: &Principal,
        customer: &str,
        public_key: &str,
    ) -> Result<CertificateView, Error> {
        p.require(&[Role::Admin])?;
        let raw = URL_SAFE_NO_PAD
            .decode(public_key)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::bad_request("invalid_public_key", "public_key must be a raw 32-byte Ed25519 key in base64url without padding (43 characters)"))?;
        self.store
            .customer(customer)
            .await?
            .ok_or_else(|| Error::not_found("customer", customer))?;
        let id = self
            .new_id::<qrgate_core::id::kind::Certificate>()?
            .to_string();
        let now = self.now();
        let mut m = Movement::new(now);
        m.records.push(Record::Certificate(Certificate {
            id: id.clone(),
            customer_id: customer.to_owned(),
            public_key: URL_SAFE_NO_PAD.encode(raw),
            status: CredentialStatus::Active,
            created_at: now,
        }));
        m.audit = Some(admin_audit(
            Some(p),
            Action::CertificateEnrolled,
            &id,
            json!({ "customer_id": customer }),
        ));
        match self.store.apply(m).await {
            Ok(_) => {}
            Err(MovementError::Store(StoreError::AlreadyExists(_))) => {
                return Err(Error::new(
                    Kind::Conflict,
                    "certificate_key_in_use",
                    "this public key is already enrolled as a certificate",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(CertificateView {
            id,
            object: "certificate",
            customer_id: customer.to_owned(),
            status: CredentialStatus::Active.as_str().into(),
            created_at: now.to_rfc3339(),
        })
    }
}
