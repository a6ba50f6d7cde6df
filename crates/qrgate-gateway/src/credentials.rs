//! The lifecycle of a customer's and a merchant's credentials: devices
//! (enrol, turn on biometrics, revoke), digital certificates and static
//! codes (revoke). A stolen API key is not a second factor: once a
//! customer has a PIN, enrolling a device, enrolling OTP or turning on
//! biometrics needs it. Every change is written with an audit entry.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::json;

use qrgate_codes::keyring::KeyId;
use qrgate_core::state::CredentialStatus;
use qrgate_store::{CredentialChange, Device, Movement, Record, Store};

use crate::trail::{self, Action};
use crate::{Error, Gateway, Kind, Principal, Role};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "dev_aaaaaaaaaaaaaaaaaaaaaaaaae", "object": "device", "customer_id": "cus_hfrymmz2r26kb3zen56ofpia2u", "kid": "devkey23", "status": "active", "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct DeviceView {
    pub id: String,
    pub object: &'static str,
    pub customer_id: String,
    /// The id the gateway gave the device's key (kept for the record; the
    /// codes the device signs carry a sealed handle instead).
    pub kid: String,
    /// `active` or `revoked`.
    pub status: String,
    /// Biometric confirmation was turned on for it (with the PIN).
    pub biometric: bool,
    pub created_at: String,
    /// Only in the answer to the enrolment: the first batch of sealed
    /// handles, one to put in each code the device signs
    /// (`POST /v1/devices/{id}/handles` gives more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handles: Option<Vec<String>>,
}

/// A batch of sealed handles for one device: put a fresh one in each code
/// it signs, so merchants cannot link its codes (spec/formats.md §3).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"object": "device_handles", "device_id": "dev_aaaaaaaaaaaaaaaaaaaaaaaaaa", "handles": ["BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTI"]}))]
pub struct DeviceHandlesView {
    pub object: &'static str,
    pub device_id: String,
    /// Sealed handles, base64url without padding (59 characters each).
    pub handles: Vec<String>,
}

fn device_view(d: &Device) -> DeviceView {
    DeviceView {
        id: d.id.clone(),
        object: "device",
        customer_id: d.customer_id.clone(),
        kid: d.kid.clone(),
        status: d.status.as_str().into(),
        biometric: d.biometric_at.is_some(),
        created_at: d.created_at.to_rfc3339(),
        handles: None,
    }
}

/// Handles a device gets with its enrolment.
pub const HANDLES_AT_ENROLMENT: usize = 20;
/// The most handles one request gives.
pub const MAX_HANDLES: usize = 100;

impl<S: Store> Gateway<S> {
    /// PIN step-up for a change to the customer's credentials: nothing
    /// when the customer has no PIN; otherwise the PIN is required and
    /// checked (it counts toward the lock-out).
    pub(crate) async fn pin_step_up(&self, customer: &str, pin: Option<&str>) -> Result<(), Error> {
        let has_pin = self
            .store
            .credentials(customer)
            .await?
            .is_some_and(|c| c.has_pin());
        if !has_pin {
            return Ok(());
        }
        let pin = pin.ok_or_else(|| {
            Error::new(
                Kind::Forbidden,
                "pin_required",
                "this change to your credentials needs your payment PIN (pin)",
            )
            .with_rule("QG-PIN-LOCKOUT")
        })?;
        let proof = self.check_pin(customer, pin).await?;
        // The attempt is given back, but earlier failures stay counted: a
        // right PIN here must not wipe the count that also brakes guesses
        // of one-time passwords.
        self.store
            .pin_refund(customer, self.now(), proof.locked)
            .await?;
        Ok(())
    }

    /// Write a credential change with its audit entry; `false` when there
    /// was nothing to change.
    pub(crate) async fn credential_change(
        &self,
        p: &Principal,
        change: CredentialChange,
        action: Action,
        subject: &str,
    ) -> Result<bool, Error> {
        let audit = trail::entry(
            action,
            subject,
            p.into(),
            json!({ "role": p.role.as_str() }),
        );
        Ok(self
            .store
            .change_credential(change, self.now(), audit)
            .await?)
    }

    /// Enroll a consumer device's Ed25519 public key (raw 32 bytes,
    /// base64url). Needs the PIN once the customer has one. The device
    /// remembers the key it was enrolled with: revoking that key revokes it.
    pub async fn enroll_device(
        &self,
        p: &Principal,
        public_key: &str,
        pin: Option<&str>,
    ) -> Result<DeviceView, Error> {
        let customer = p.customer()?.to_owned();
        let raw = URL_SAFE_NO_PAD
            .decode(public_key)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::bad_request("invalid_public_key", "public_key must be a raw 32-byte Ed25519 key in base64url without padding (43 characters)"))?;
        self.pin_step_up(&customer, pin).await?;
        let id = self.new_id::<qrgate_core::id::kind::Device>()?.to_string();
        let kid = KeyId::generate(&self.rng)
            .map_err(Error::internal)?
            .to_string();
        let now = self.now();
        let device = Device {
            id: id.clone(),
            customer_id: customer.clone(),
            kid,
            public_key: URL_SAFE_NO_PAD.encode(raw),
            status: CredentialStatus::Active,
            created_at: now,
            enrolled_by: Some(p.key_id.clone()),
            biometric_at: None,
        };
        let mut view = device_view(&device);
        view.handles = Some(self.seal_handles(&device.id, HANDLES_AT_ENROLMENT)?);
        let mut m = Movement::new(now);
        // Written only while the enrolling key is live: a revocation racing
        // the enrolment cannot leave the thief's device behind.
        m.live_api_key = Some(p.key_id.clone());
        m.records.push(Record::Device(device));
        m.audit = Some(trail::entry(
            Action::DeviceEnrolled,
            id,
            p.into(),
            json!({ "customer_id": customer }),
        ));
        self.store.apply(m).await?;
        Ok(view)
    }

    /// `count` fresh sealed handles naming the device.
    fn seal_handles(&self, device_id: &str, count: usize) -> Result<Vec<String>, Error> {
        let id: qrgate_core::id::DeviceId = device_id.parse().map_err(Error::internal)?;
        (0..count)
            .map(|_| {
                self.handle_key
                    .seal(*id.as_bytes(), &self.rng)
                    .map(|h| h.to_string())
                    .map_err(Error::internal)
            })
            .collect()
    }

    /// More sealed handles for one of the consumer's own active devices
    /// (1 to [`MAX_HANDLES`], default [`HANDLES_AT_ENROLMENT`]). Only the
    /// device's owner gets them: a handle lets codes name the device.
    pub async fn device_handles(
        &self,
        p: &Principal,
        device_id: &str,
        count: Option<u32>,
    ) -> Result<DeviceHandlesView, Error> {
        let customer = p.customer()?;
        let count = match count {
            None => HANDLES_AT_ENROLMENT,
            Some(n) if (1..=MAX_HANDLES as u32).contains(&n) => n as usize,
            Some(_) => {
                return Err(Error::bad_request(
                    "invalid_count",
                    format!("count must be 1 to {MAX_HANDLES}"),
                ));
            }
        };
        let d = self
            .store
            .device(device_id)
            .await?
            .filter(|d| d.customer_id == customer)
            .ok_or_else(|| Error::not_found("device", device_id))?;
        if d.status != CredentialStatus::Active {
            return Err(Error::new(
                Kind::Conflict,
                "device_revoked",
                format!("device {device_id} is revoked"),
            ));
        }
        Ok(DeviceHandlesView {
            object: "device_handles",
            device_id: d.id.clone(),
            handles: self.seal_handles(&d.id, count)?,
        })
    }

    /// The consumer's devices (an admin's: any customer's).
    async fn visible_device(&self, p: &Principal, device_id: &str) -> Result<Device, Error> {
        p.require(&[Role::Consumer, Role::Admin])?;
        self.store
            .device(device_id)
            .await?
            .filter(|d| p.role == Role::Admin || p.subject.as_deref() == Some(&d.customer_id))
            .ok_or_else(|| Error::not_found("device", device_id))
    }

    /// Revoke a device (the consumer's own, or any as admin): codes it
    /// signed, even offline ones not yet presented, move no money from now
    /// on, on every gateway (the movement checks the device is active).
    pub async fn revoke_device(&self, p: &Principal, device_id: &str) -> Result<DeviceView, Error> {
        let d = self.visible_device(p, device_id).await?;
        let change = CredentialChange::DeviceRevoke {
            id: d.id.clone(),
            customer_id: (p.role != Role::Admin).then(|| d.customer_id.clone()),
        };
        self.credential_change(p, change, Action::DeviceRevoked, &d.id)
            .await?;
        let now = self.visible_device(p, device_id).await?;
        Ok(device_view(&now))
    }

    /// Turn on biometric confirmation for one of the consumer's active
    /// devices: needs a PIN set, and the PIN.
    pub async fn enable_biometric(
        &self,
        p: &Principal,
        device_id: &str,
        pin: Option<&str>,
    ) -> Result<DeviceView, Error> {
        let customer = p.customer()?.to_owned();
        let d = self.visible_device(p, device_id).await?;
        if d.status != CredentialStatus::Active {
            return Err(Error::new(
                Kind::Conflict,
                "device_revoked",
                format!("device {device_id} is revoked"),
            ));
        }
        let has_pin = self
            .store
            .credentials(&customer)
            .await?
            .is_some_and(|c| c.has_pin());
        if !has_pin {
            return Err(Error::new(
                Kind::Conflict,
                "pin_not_set",
                "set a payment PIN first (POST /v1/me/pin): biometrics are turned on with it",
            ));
        }
        self.pin_step_up(&customer, pin).await?;
        let change = CredentialChange::DeviceBiometric {
            id: d.id.clone(),
            customer_id: customer,
        };
        self.credential_change(p, change, Action::DeviceBiometricEnabled, &d.id)
            .await?;
        let now = self.visible_device(p, device_id).await?;
        Ok(device_view(&now))
    }

    /// The consumer's devices.
    pub async fn list_devices(&self, p: &Principal) -> Result<Vec<DeviceView>, Error> {
        let customer = p.customer()?;
        Ok(self
            .store
            .devices_of(customer)
            .await?
            .iter()
            .map(device_view)
            .collect())
    }

    /// Revoke a digital certificate (the customer's own, or any as admin):
    /// it proves nothing from now on.
    pub async fn revoke_certificate(
        &self,
        p: &Principal,
        customer_id: &str,
        certificate_id: &str,
    ) -> Result<(), Error> {
        p.require(&[Role::Consumer, Role::Admin])?;
        if p.role == Role::Consumer && p.subject.as_deref() != Some(customer_id) {
            return Err(Error::not_found("certificate", certificate_id));
        }
        let cert = self
            .store
            .certificates_of(customer_id)
            .await?
            .into_iter()
            .find(|c| c.id == certificate_id)
            .ok_or_else(|| Error::not_found("certificate", certificate_id))?;
        let change = CredentialChange::CertificateRevoke {
            id: cert.id.clone(),
            customer_id: Some(customer_id.to_owned()),
        };
        if !self
            .credential_change(p, change, Action::CertificateRevoked, &cert.id)
            .await?
        {
            return Err(Error::new(
                Kind::Conflict,
                "certificate_revoked",
                format!("certificate {certificate_id} is already revoked"),
            ));
        }
        Ok(())
    }

    /// Revoke one of the merchant's static codes: scans of it are refused
    /// from now on (`code_revoked`).
    pub async fn revoke_static_code(&self, p: &Principal, id: &str) -> Result<(), Error> {
        let merchant = p.merchant()?.to_owned();
        let sc = self
            .store
            .static_code(id)
            .await?
            .filter(|sc| sc.merchant_id == merchant)
            .ok_or_else(|| Error::not_found("static code", id))?;
        let change = CredentialChange::StaticCodeRevoke {
            id: sc.id.clone(),
            merchant_id: merchant,
        };
        if !self
            .credential_change(p, change, Action::StaticCodeRevoked, &sc.id)
            .await?
        {
            return Err(Error::new(
                Kind::Conflict,
                "code_revoked",
                format!("static code {id} is already revoked"),
            ));
        }
        Ok(())
    }
}
