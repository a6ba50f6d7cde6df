//! Static merchant codes: made, shown (with the risk prompt a counter
//! code needs), verified and, in [`crate::credentials`], revoked.

use serde::Serialize;

use qrgate_codes::merchant::{MerchantCode, MerchantCodeKind};
use qrgate_core::id::StaticCodeId;
use qrgate_store::*;

use crate::{Error, Gateway, Principal, Role};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "sqr_lrzzauw6gs3zhv23tzmgayahci", "object": "static_code", "merchant_id": "mch_6bsdfgzqrkdpgz6gy6p366fdeu", "payload": "00020101021126590009io.qrgate0130sqr_…6304FF37", "status": "active", "created_at": "2026-11-25T13:27:50.000Z"}))]
pub struct StaticCodeView {
    pub id: String,
    pub object: &'static str,
    pub merchant_id: String,
    pub payload: String,
    /// `active`, `suspended` (several payers reported it tampered; scans
    /// are refused until the operator decides) or `revoked`.
    pub status: &'static str,
    pub created_at: String,
    /// What the merchant must know about displaying a static code (BCP-MPM-RISK-PROMPT).
    pub risk_prompt: &'static str,
}

/// BCP-MPM-RISK-PROMPT at code generation.
pub const STATIC_CODE_PROMPT: &str = "A static code can be covered or swapped by a fraudster's code: display it where staff can see it, check it every day with POST /v1/codes/verify (it must name your shop), do not lend or sell it, and do not use a personal static code to collect payments remotely.";

impl<S: Store> Gateway<S> {
    /// A printable static code for the merchant's counter.
    pub async fn create_static_code(&self, p: &Principal) -> Result<StaticCodeView, Error> {
        let m = self.merchant_of(p).await?;
        let id: StaticCodeId = self.new_id()?;
        let code = MerchantCode {
            kind: MerchantCodeKind::Static { code_id: id },
            display: Self::display(&m),
        };
        let payload = code.issue(&self.keys_read())?;
        let now = self.now();
        self.store
            .insert(Record::StaticCode(StaticCode {
                id: id.to_string(),
                merchant_id: m.id.clone(),
                payload: payload.clone(),
                created_at: now,
                revoked_at: None,
                suspended_at: None,
                reports_cleared_at: None,
            }))
            .await?;
        Ok(StaticCodeView {
            id: id.to_string(),
            object: "static_code",
            merchant_id: m.id,
            payload,
            status: "active",
            created_at: now.to_rfc3339(),
            risk_prompt: STATIC_CODE_PROMPT,
        })
    }

    /// The merchant's static codes, newest first (at most 100).
    pub async fn list_static_codes(&self, p: &Principal) -> Result<StaticCodeList, Error> {
        let merchant = p.merchant()?.to_owned();
        let codes = self.store.static_codes_of(&merchant, 100).await?;
        Ok(StaticCodeList {
            object: "list",
            data: codes.into_iter().map(view).collect(),
        })
    }

    /// A static code's payload; for the owning merchant (or admin) only.
    pub async fn get_static_code(&self, p: &Principal, id: &str) -> Result<StaticCodeView, Error> {
        let sc = self
            .store
            .static_code(id)
            .await?
            .ok_or_else(|| Error::not_found("static code", id))?;
        let visible = p.role == Role::Admin
            || (p.role == Role::Merchant && p.subject.as_deref() == Some(sc.merchant_id.as_str()));
        if !visible {
            return Err(Error::not_found("static code", id));
        }
        Ok(view(sc))
    }
}

fn view(sc: StaticCode) -> StaticCodeView {
    StaticCodeView {
        id: sc.id,
        object: "static_code",
        merchant_id: sc.merchant_id,
        payload: sc.payload,
        status: match (sc.revoked_at, sc.suspended_at) {
            (Some(_), _) => "revoked",
            (None, Some(_)) => "suspended",
            (None, None) => "active",
        },
        created_at: sc.created_at.to_rfc3339(),
        risk_prompt: STATIC_CODE_PROMPT,
    }
}

/// A merchant's static codes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaticCodeList {
    pub object: &'static str,
    pub data: Vec<StaticCodeView>,
}
