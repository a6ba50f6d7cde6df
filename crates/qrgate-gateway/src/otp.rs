//! One-time passwords: TOTP (RFC 6238) enrolled per customer, the
//! possession element an authenticator app proves.
//!
//! HMAC-SHA1, 30-second steps, 6 digits (what every authenticator app
//! speaks); one step of clock drift either way is accepted. Each code is
//! single use: the step it matched is burned in the store, so a replayed
//! code is refused. A wrong code counts toward the same lock-out as a wrong
//! PIN (QG-PIN-LOCKOUT), so enrolling needs a PIN first.

use ring::rand::SecureRandom;
use serde::Serialize;
use serde_json::json;

use qrgate_codes::otp::{
    DIGITS, DRIFT_STEPS, PERIOD_SECONDS, base32, same, step_of, totp, unbase32,
};
use qrgate_core::Timestamp;
use qrgate_store::*;

use crate::trail::{self, Action};
use crate::{Error, Gateway, Kind, Principal};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "otp_…", "object": "otp_enrollment", "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "otpauth_uri": "otpauth://totp/qrgate:cus_…?secret=…&issuer=qrgate&algorithm=SHA1&digits=6&period=30", "algorithm": "SHA1", "digits": 6, "period": 30}))]
pub struct OtpView {
    pub id: String,
    pub object: &'static str,
    /// Shown once: put it in the authenticator app (or scan `otpauth_uri` as a QR code).
    pub secret: String,
    pub otpauth_uri: String,
    pub algorithm: &'static str,
    pub digits: usize,
    pub period: i64,
    pub created_at: String,
}

impl<S: Store> Gateway<S> {
    /// Enroll (or replace) the consumer's TOTP secret. Needs a PIN set (a
    /// wrong code counts toward its lock-out) and the PIN itself.
    pub async fn enroll_otp(&self, p: &Principal, pin: Option<&str>) -> Result<OtpView, Error> {
        let customer = p.customer()?.to_owned();
        if !self
            .store
            .credentials(&customer)
            .await?
            .is_some_and(|c| c.has_pin())
        {
            return Err(Error::new(
                Kind::Conflict,
                "pin_not_set",
                "set a payment PIN first (POST /v1/me/pin): wrong one-time passwords count toward its lock-out",
            ));
        }
        // A stolen API key is not a second factor: the PIN is needed too.
        self.pin_step_up(&customer, pin).await?;
        let mut secret = [0_u8; 20];
        self.rng.fill(&mut secret).map_err(Error::internal)?;
        let secret = base32(&secret);
        let now = self.now();
        let id = self.new_id::<qrgate_core::id::kind::Otp>()?.to_string();
        let mut m = Movement::new(now);
        m.live_api_key = Some(p.key_id.clone());
        m.records.push(Record::Otp(OtpEnrollment {
            id: id.clone(),
            customer_id: customer.clone(),
            secret: self
                .secrets
                .seal(&secret, &crate::secret_place(SecretSlot::OtpSecret, &id))?,
            created_at: now,
        }));
        m.audit = Some(trail::entry(
            Action::OtpEnrolled,
            id.clone(),
            p.into(),
            json!({ "customer_id": customer }),
        ));
        self.store.apply(m).await?;
        Ok(OtpView {
            otpauth_uri: format!(
                "otpauth://totp/qrgate:{customer}?secret={secret}&issuer=qrgate&algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECONDS}"
            ),
            id,
            object: "otp_enrollment",
            secret,
            algorithm: "SHA1",
            digits: DIGITS,
            period: PERIOD_SECONDS,
            created_at: now.to_rfc3339(),
        })
    }

    /// The checks of a one-time password that need no attempt: its shape,
    /// and that the customer enrolled an app. Made before a PIN is tried,
    /// so a malformed or impossible OTP does not spend the PIN's attempt.
    pub(crate) async fn otp_can_be_tried(&self, customer: &str, code: &str) -> Result<(), Error> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::bad_request(
                "invalid_otp",
                "the one-time password is six digits",
            ));
        }
        if self.store.otp_enrollment(customer).await?.is_none() {
            return Err(Error::new(
                Kind::Conflict,
                "otp_not_enrolled",
                "no one-time-password app is enrolled (POST /v1/me/otp)",
            ));
        }
        Ok(())
    }

    /// Check a one-time password and burn the step it matched. A wrong code
    /// counts toward the lock-out; a code used before is refused.
    pub(crate) async fn check_otp(&self, customer: &str, code: &str) -> Result<(), Error> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::bad_request(
                "invalid_otp",
                "the one-time password is six digits",
            ));
        }
        let now = self.now();
        self.pin_rate(customer, now)?;
        let cr = self.store.credentials(customer).await?;
        if let Some(until) = cr
            .as_ref()
            .and_then(|c| c.locked_until)
            .filter(|u| *u > now)
        {
            return Err(Error::new(
                Kind::Conflict,
                "pin_locked",
                format!("too many wrong PINs or one-time passwords; try again after {until}"),
            )
            .with_rule("QG-PIN-LOCKOUT"));
        }
        let enrolled = self.store.otp_enrollment(customer).await?.ok_or_else(|| {
            Error::new(
                Kind::Conflict,
                "otp_not_enrolled",
                "no one-time-password app is enrolled (POST /v1/me/otp)",
            )
        })?;
        let secret = unbase32(&self.secrets.open(
            &enrolled.secret,
            &crate::secret_place(SecretSlot::OtpSecret, &enrolled.id),
        )?)
        .ok_or_else(|| Error::internal("stored OTP secret"))?;
        // Taken before the code is checked, like a PIN attempt.
        let (left, locks) = self.take_attempt(customer, now).await?;
        let now_step = step_of(now);
        let matched = (now_step - DRIFT_STEPS..=now_step + DRIFT_STEPS).find(|s| {
            u64::try_from(*s).is_ok_and(|u| same(totp(&secret, u).as_bytes(), code.as_bytes()))
        });
        let Some(step) = matched else {
            let msg = match (left, locks) {
                (_, Some(u)) => {
                    format!("wrong one-time password; PIN and OTP are now locked until {u}")
                }
                (left, None) => {
                    format!("wrong one-time password; {left} attempts left before the lock")
                }
            };
            return Err(
                Error::new(Kind::Unprocessable, "otp_incorrect", msg).with_rule("QG-PIN-LOCKOUT")
            );
        };
        // Single use: burn the step (kept until it can no longer match).
        let mut m = Movement::new(now);
        m.burns.push(CodeBurn {
            key: format!("otp:{customer}:{step}"),
            payment_id: None,
            expires_at: Timestamp::from_unix_millis(
                (step + DRIFT_STEPS + 1) * PERIOD_SECONDS * 1000,
            ),
        });
        match self.store.apply(m).await {
            Ok(_) => Ok(()),
            Err(MovementError::CodeAlreadyUsed { .. }) => Err(Error::new(
                Kind::Unprocessable,
                "otp_reused",
                "this one-time password was already used; wait for the next one",
            )),
            Err(e) => Err(e.into()),
        }
    }
}
