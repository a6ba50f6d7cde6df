//! Consumer-presented codes: a one-time code issued online (18 digits and a
//! signed QR token, one use between them), and who pays with a code the
//! merchant scanned (a device-signed token, a gateway token, a numeric
//! code), found and proven before anything is written.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use serde::Serialize;

use qrgate_codes::cpm::{Holder, TokenClaims, UnverifiedToken};
use qrgate_codes::{cpm, numeric};
use qrgate_core::Timestamp;
use qrgate_core::id::DeviceId;
use qrgate_core::risk::Element;
use qrgate_core::state::CredentialStatus;
use qrgate_store::*;

use crate::{Error, Gateway, Kind, Principal};

/// A payment code the gateway issued online, in both presentations.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"object": "payment_code", "numeric": "779204297617292862", "qr": "QRG:AEBGW3DJ…", "expires_at": "2026-11-25T13:28:48.000Z", "valid_seconds": 60}))]
pub struct PaymentCodeView {
    pub object: &'static str,
    /// 18 digits for 1D barcode scanners and manual entry.
    pub numeric: String,
    /// Signed token for the QR presentation.
    pub qr: String,
    pub expires_at: String,
    pub valid_seconds: u8,
}

/// The customer and proof behind a charged consumer code.
pub(super) struct Payer {
    pub(super) customer: String,
    pub(super) elements: Vec<Element>,
    pub(super) burn_key: String,
    pub(super) burn_expires: Timestamp,
    pub(super) code_kind: &'static str,
    pub(super) device_id: Option<String>,
}

impl<S: Store> Gateway<S> {
    /// Issue a one-time payment code online: an 18-digit number and a signed
    /// QR token, both valid for the catalogue's code validity, usable once
    /// between them.
    pub async fn issue_payment_code(&self, p: &Principal) -> Result<PaymentCodeView, Error> {
        let customer = p.customer()?.to_owned();
        let now = self.now();
        self.rate.draw(
            crate::limiter::Bucket::CodeIssue,
            &p.key_id,
            self.limits.rate_code_issue,
            now,
            true,
        )?;
        let ttl = self.limits.code_ttl_seconds;
        let numeric = numeric::generate(&self.rng)?;
        let expires_at = now
            .checked_add_seconds(i64::from(ttl))
            .ok_or_else(|| Error::internal("time overflow"))?;
        // The QR token's handle names the numeric code, so both burn as one.
        let n: u64 = numeric.parse().map_err(Error::internal)?;
        let mut handle = [0_u8; 16];
        handle[..8].copy_from_slice(&n.to_be_bytes());
        self.rng.fill(&mut handle[8..]).map_err(Error::internal)?;
        let qr = {
            let ring = self.keys_read();
            let kid = ring.active_kid().clone();
            let claims = TokenClaims::new(Holder::Gateway { kid, handle }, now, ttl, &self.rng)?;
            let (_, sig) = ring.sign(&claims.signing_message());
            claims.encode(&sig)
        };
        self.store
            .insert(Record::IssuedCode(IssuedCode {
                code: numeric.clone(),
                customer_id: customer,
                device_id: None,
                expires_at,
                created_at: now,
            }))
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => Error::new(
                    Kind::Unavailable,
                    "service_unavailable",
                    "code collision; request a new code",
                ),
                other => other.into(),
            })?;
        Ok(PaymentCodeView {
            object: "payment_code",
            numeric,
            qr,
            expires_at: expires_at.to_rfc3339(),
            valid_seconds: ttl,
        })
    }

    /// [`Self::payer_of`] for a merchant's charge, with the brake on guessing
    /// numeric codes (QG-RATE-UNKNOWN-CODE): once the merchant key has
    /// charged too many unknown ones this minute, numeric charges wait.
    pub(super) async fn payer_of_for(
        &self,
        p: &Principal,
        code: &str,
        now: Timestamp,
    ) -> Result<Payer, Error> {
        let numeric = code.trim().bytes().all(|b| b.is_ascii_digit());
        let limit = self.limits.rate_unknown_code;
        let bucket = crate::limiter::Bucket::UnknownCode;
        // Taken before the look-up (so guesses sent at once cannot all pass
        // a check), and given back when the code is known after all.
        if numeric {
            self.rate.draw(bucket, &p.key_id, limit, now, true)?;
        }
        let found = self.payer_of(code, now).await;
        if numeric && !matches!(&found, Err(e) if e.code == "payment_code_unknown") {
            self.rate.give_back(bucket, &p.key_id, now);
        }
        found
    }

    /// Identify the payer of a consumer code and what proves it, before any
    /// database write. Signatures are checked here, outside the transaction.
    pub(super) async fn payer_of(&self, code: &str, now: Timestamp) -> Result<Payer, Error> {
        let code = code.trim();
        if code.starts_with(cpm::PREFIX) {
            let token = UnverifiedToken::decode(code)?;
            let skew = cpm::DEFAULT_MAX_FUTURE_SKEW_MS;
            match &token.claims.holder {
                Holder::Device { sealed } => {
                    let unknown = || {
                        Error::new(
                            Kind::Unprocessable,
                            "payment_code_unknown_key",
                            "the code was signed by a device this gateway does not know",
                        )
                    };
                    // A handle this gateway did not seal names no device.
                    let device = self.handle_key.open(sealed).map_err(|_| unknown())?;
                    let device_id = DeviceId::from_bytes(device).to_string();
                    let d = self.device_row(&device_id).await?.ok_or_else(unknown)?;
                    // The status of a cached row may be stale: the movement
                    // checks it again (Movement::live_device).
                    if d.status != CredentialStatus::Active {
                        return Err(Error::new(
                            Kind::Unprocessable,
                            "device_revoked",
                            "the device that made this code is revoked",
                        )
                        .with_rule("QG-CREDENTIALS"));
                    }
                    let pk = URL_SAFE_NO_PAD
                        .decode(&d.public_key)
                        .map_err(Error::internal)?;
                    let claims = token.verify(&pk, now, skew)?;
                    Ok(Payer {
                        customer: d.customer_id,
                        elements: vec![Element::DeviceSignature],
                        burn_key: format!(
                            "cpm:{device_id}:{}:{}",
                            claims.issued_at_seconds,
                            hex::encode(claims.nonce)
                        ),
                        burn_expires: claims.expires_at(),
                        code_kind: "qr_token_device",
                        device_id: Some(device_id),
                    })
                }
                Holder::Gateway { kid, .. } => {
                    let public = self.public_keys();
                    let key = public.keys.iter().find(|k| &k.kid == kid).ok_or_else(|| {
                        Error::new(
                            Kind::Unprocessable,
                            "payment_code_unknown_key",
                            "the code was signed by a key this gateway does not know",
                        )
                    })?;
                    if key.state == qrgate_codes::keyring::KeyState::Retired {
                        return Err(Error::new(
                            Kind::Unprocessable,
                            "payment_code_unknown_key",
                            "the code was signed by a retired key",
                        ));
                    }
                    let raw = key
                        .raw()
                        .ok_or_else(|| Error::internal("bad stored public key"))?;
                    let claims = token.verify(&raw, now, skew)?;
                    let Holder::Gateway { handle, .. } = claims.holder else {
                        return Err(Error::internal("the verified holder changed"));
                    };
                    let mut n = [0_u8; 8];
                    n.copy_from_slice(&handle[..8]);
                    let numeric = format!("{:018}", u64::from_be_bytes(n));
                    self.issued_payer(&numeric, now, "qr_token_gateway").await
                }
            }
        } else if code.bytes().all(|b| b.is_ascii_digit()) && !code.is_empty() {
            numeric::validate(code)?;
            self.issued_payer(code, now, "numeric").await
        } else {
            Err(Error::bad_request(
                "payment_code_malformed",
                "auth_code must be the consumer's 18-digit payment code or its QR token (QRG:…)",
            ))
        }
    }

    pub(super) async fn issued_payer(
        &self,
        numeric: &str,
        now: Timestamp,
        kind: &'static str,
    ) -> Result<Payer, Error> {
        let issued = self.store.issued_code(numeric).await?.ok_or_else(|| {
            Error::new(
                Kind::Unprocessable,
                "payment_code_unknown",
                "no such payment code: ask the customer to refresh it",
            )
        })?;
        if now >= issued.expires_at {
            return Err(Error::new(
                Kind::Unprocessable,
                "payment_code_expired",
                format!("payment code expired at {}", issued.expires_at),
            )
            .with_rule("BCP-CODE-TTL"));
        }
        // Issued online to an authenticated app: no element is proven at payment time.
        Ok(Payer {
            customer: issued.customer_id,
            elements: Vec::new(),
            burn_key: format!("issued:{numeric}"),
            burn_expires: issued.expires_at,
            code_kind: kind,
            device_id: issued.device_id,
        })
    }
}
