//! qrgate's signed merchant codes (rules BCP-CODE-SIGNED; they carry only
//! the merchant, the code or the order, BCP-CODE-NO-SENSITIVE): EMV MPM payloads that any EMV reader
//! parses, carrying our identifier, the code or order id and an Ed25519
//! signature, so a consumer app detects a forged or swapped code offline.
//!
//! Layout (see `spec/formats.md`):
//! - template 26: `00` = [`QRGATE_GUI`], `01` = code id (`sqr_…` static,
//!   `ord_…` dynamic), `02` = key id, `03` = expiry (dynamic only, Unix seconds);
//! - dynamic codes: amount in 54, the order reference in 62/05;
//! - template 91, the last before the CRC: `00` = [`SIGNATURE_GUI`],
//!   `01` = 86 base64url characters of the Ed25519 signature over
//!   `"qrgate-mpm-v1\0"` followed by the UTF-8 bytes of every field before it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use qrgate_core::id::{OrderId, StaticCodeId};
use qrgate_core::{Currency, Money, Timestamp};

use crate::emv::{
    self, BuildError, EmvError, Encoder, LanguageTemplate, MpmPayload, Payload, PointOfInitiation,
    Template,
};
use crate::keyring::{KeyId, Keyring, SignatureError, Verifier};

/// Globally unique identifier of qrgate in merchant account template 26.
pub const QRGATE_GUI: &str = "io.qrgate";
pub const MERCHANT_TEMPLATE: u8 = 26;
/// Unreserved template holding the signature.
pub const SIGNATURE_TEMPLATE: u8 = 91;
/// Identifier in the signature template's sub-field 00 (short: the value is
/// limited to 99 characters and the signature takes 90 of them).
pub const SIGNATURE_GUI: &str = "QRGS";
const DOMAIN: &[u8] = b"qrgate-mpm-v1\0";

/// What the merchant's code shows about the merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MerchantDisplay {
    pub name: String,
    pub city: String,
    /// ISO 3166-1 alpha 2.
    pub country: String,
    /// ISO 18245 merchant category code.
    pub mcc: String,
    pub currency: Currency,
    pub postal_code: Option<String>,
    pub language: Option<LanguageTemplate>,
}

/// Static (reusable, payer enters the amount) or dynamic (one order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MerchantCodeKind {
    Static {
        code_id: StaticCodeId,
    },
    Dynamic {
        order_id: OrderId,
        amount: Money,
        /// Shown to the payer and printed on receipts; at most 25 characters.
        reference: String,
        expires_at: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MerchantCode {
    pub kind: MerchantCodeKind,
    pub display: MerchantDisplay,
}

/// Why a merchant code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerchantCodeError {
    #[error("not a valid EMV payload: {0}")]
    Emv(#[from] EmvError),
    #[error("not a qrgate code: no template 26 with identifier {QRGATE_GUI}")]
    NotQrgate,
    #[error("qrgate code is malformed: {0}")]
    Malformed(String),
    #[error("signature rejected: {0}")]
    Signature(#[from] SignatureError),
    #[error("code expired at {expires_at}")]
    Expired { expires_at: Timestamp },
    #[error("cannot build code: {0}")]
    Build(#[from] BuildError),
}

impl MerchantCodeError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            MerchantCodeError::Emv(_) => "code_malformed",
            MerchantCodeError::NotQrgate => "code_not_qrgate",
            MerchantCodeError::Malformed(_) => "code_malformed",
            MerchantCodeError::Signature(SignatureError::UnknownKey(_)) => "code_unknown_key",
            MerchantCodeError::Signature(SignatureError::RetiredKey(_)) => "code_retired_key",
            MerchantCodeError::Signature(_) => "code_bad_signature",
            MerchantCodeError::Expired { .. } => "code_expired",
            MerchantCodeError::Build(_) => "code_invalid",
        }
    }
}

fn malformed(why: impl Into<String>) -> MerchantCodeError {
    MerchantCodeError::Malformed(why.into())
}

impl MerchantCode {
    fn to_mpm(&self, kid: &KeyId) -> Result<MpmPayload, MerchantCodeError> {
        let d = &self.display;
        let mut account = vec![(0, QRGATE_GUI.to_owned())];
        let (poi, amount, additional) = match &self.kind {
            MerchantCodeKind::Static { code_id } => {
                account.push((1, code_id.to_string()));
                account.push((2, kid.to_string()));
                (PointOfInitiation::Static, None, vec![])
            }
            MerchantCodeKind::Dynamic {
                order_id,
                amount,
                reference,
                expires_at,
            } => {
                account.push((1, order_id.to_string()));
                account.push((2, kid.to_string()));
                account.push((3, expires_at.unix_seconds().to_string()));
                (
                    PointOfInitiation::Dynamic,
                    Some(*amount),
                    vec![(5, reference.clone())],
                )
            }
        };
        Ok(MpmPayload {
            point_of_initiation: poi,
            merchant_accounts: vec![Template {
                id: MERCHANT_TEMPLATE,
                subfields: account,
            }],
            mcc: d.mcc.clone(),
            currency: d.currency,
            amount,
            country: d.country.clone(),
            merchant_name: d.name.clone(),
            merchant_city: d.city.clone(),
            postal_code: d.postal_code.clone(),
            additional_data: additional,
            language: d.language.clone(),
            unreserved: vec![],
        })
    }

    /// Encode and sign with the keyring's active key.
    pub fn issue(&self, keyring: &Keyring) -> Result<String, MerchantCodeError> {
        let kid = keyring.active_kid().clone();
        let mut enc = Encoder::new();
        self.to_mpm(&kid)?.encode_fields(&mut enc)?;
        let mut msg = DOMAIN.to_vec();
        msg.extend_from_slice(enc.body().as_bytes());
        let (signed_kid, sig) = keyring.sign(&msg);
        debug_assert_eq!(signed_kid, kid);
        enc.template(
            SIGNATURE_TEMPLATE,
            &[
                (0, SIGNATURE_GUI.to_owned()),
                (1, URL_SAFE_NO_PAD.encode(sig)),
            ],
        )?;
        Ok(enc.finish())
    }
}

/// A merchant code whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedMerchantCode {
    pub code: MerchantCode,
    pub key_id: KeyId,
}

/// Verify a scanned merchant code offline: EMV structure and CRC, our
/// template, the signature under a known, unretired key, and (dynamic codes)
/// the expiry.
pub fn verify(
    payload: &str,
    keys: &dyn Verifier,
    now: Timestamp,
) -> Result<VerifiedMerchantCode, MerchantCodeError> {
    let p = emv::parse(payload)?;
    verify_parsed(&p, keys, now)
}

/// The key id a code of ours names as its signer, read without checking
/// anything else (what a retirement of that key would make unpayable).
pub fn signer_of(payload: &str) -> Option<KeyId> {
    let p = emv::parse(payload).ok()?;
    let account = p
        .field(MERCHANT_TEMPLATE)
        .filter(|f| f.subfield_value(0) == Some(QRGATE_GUI))?;
    KeyId::parse(account.subfield_value(2)?).ok()
}

pub fn verify_parsed(
    p: &Payload,
    keys: &dyn Verifier,
    now: Timestamp,
) -> Result<VerifiedMerchantCode, MerchantCodeError> {
    let account = p
        .field(MERCHANT_TEMPLATE)
        .filter(|f| f.subfield_value(0) == Some(QRGATE_GUI))
        .ok_or(MerchantCodeError::NotQrgate)?;
    let fields = p.fields();
    // The signature template must be the last field before the CRC.
    let sig_field = fields
        .len()
        .checked_sub(2)
        .map(|i| &fields[i])
        .filter(|f| f.tag.id() == SIGNATURE_TEMPLATE)
        .ok_or_else(|| malformed("signature template 91 must be the last field before the CRC"))?;
    if sig_field.subfield_value(0) != Some(SIGNATURE_GUI) {
        return Err(malformed(
            "signature template 91 does not carry identifier QRGS",
        ));
    }
    let sig_b64 = sig_field
        .subfield_value(1)
        .ok_or_else(|| malformed("signature template 91 has no signature in sub-field 01"))?;
    if sig_b64.len() != 86 {
        return Err(SignatureError::Malformed("signature is not 86 base64url characters").into());
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| SignatureError::Malformed("signature is not base64url"))?;
    let kid_str = account
        .subfield_value(2)
        .ok_or_else(|| malformed("template 26 has no key id in sub-field 02"))?;
    let kid = KeyId::parse(kid_str).map_err(|e| malformed(e.to_string()))?;

    // Signed bytes: everything before the signature template.
    let signed: String = p.raw().chars().take(sig_field.offset).collect();
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(signed.as_bytes());
    keys.verify(&kid, &msg, &sig)?;

    // Only now, with the content authentic, interpret it.
    let mpm = MpmPayload::from_payload(p)?;
    let kind = code_kind(p, account, &mpm, now)?;
    Ok(VerifiedMerchantCode {
        code: MerchantCode {
            kind,
            display: MerchantDisplay {
                name: mpm.merchant_name,
                city: mpm.merchant_city,
                country: mpm.country,
                mcc: mpm.mcc,
                currency: mpm.currency,
                postal_code: mpm.postal_code,
                language: mpm.language,
            },
        },
        key_id: kid,
    })
}

/// What an authentic code is for: a static code (its id), or an order
/// (its id, amount, reference and expiry; refused once expired).
fn code_kind(
    p: &Payload,
    account: &emv::Field,
    mpm: &MpmPayload,
    now: Timestamp,
) -> Result<MerchantCodeKind, MerchantCodeError> {
    let code_id = account
        .subfield_value(1)
        .ok_or_else(|| malformed("template 26 has no code id in sub-field 01"))?;
    Ok(match mpm.point_of_initiation {
        PointOfInitiation::Static => MerchantCodeKind::Static {
            code_id: code_id
                .parse()
                .map_err(|e: qrgate_core::IdError| malformed(e.to_string()))?,
        },
        PointOfInitiation::Dynamic => {
            let secs: i64 = account
                .subfield_value(3)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| malformed("dynamic code has no expiry in 26.03"))?;
            let expires_at = Timestamp::from_unix_seconds(secs)
                .ok_or_else(|| malformed("expiry out of range"))?;
            let amount = mpm
                .amount
                .ok_or_else(|| malformed("dynamic code has no amount in tag 54"))?;
            let reference = p
                .field(62)
                .and_then(|f| f.subfield_value(5))
                .ok_or_else(|| malformed("dynamic code has no reference in 62.05"))?
                .to_owned();
            if now >= expires_at {
                return Err(MerchantCodeError::Expired { expires_at });
            }
            MerchantCodeKind::Dynamic {
                order_id: code_id
                    .parse()
                    .map_err(|e: qrgate_core::IdError| malformed(e.to_string()))?,
                amount,
                reference,
                expires_at,
            }
        }
    })
}
