//! The parts of `qrgate-bench` that drive a gateway over HTTP: set up
//! merchants and customers with enrolled device keys, sign payment tokens
//! offline, charge them. The load generator (`src/main.rs`) and the fault
//! tests (`qrgate-server/tests/faults.rs`) share them.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use qrgate_codes::cpm::{Holder, TokenClaims};
use qrgate_codes::handle::SealedHandle;

use qrgate_core::Timestamp;
use qrgate_core::id::DeviceId;

/// A gateway and the admin key to set it up with.
#[derive(Clone)]
pub struct Target {
    pub client: reqwest::Client,
    pub base: String,
    pub admin_key: String,
}

/// An HTTP answer: status and JSON body (`Null` when the body was not JSON).
pub type Answer = (u16, Value);

impl Target {
    pub fn new(base: &str, admin_key: &str, connections: usize) -> Result<Target, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections.max(1))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Target {
            client,
            base: base.trim_end_matches('/').to_owned(),
            admin_key: admin_key.to_owned(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST JSON with a bearer key and optional Idempotency-Key. `Err` only
    /// when no HTTP answer came back (connection refused or cut, timeout).
    pub async fn post(
        &self,
        path: &str,
        key: &str,
        body: &Value,
        idem: Option<&str>,
    ) -> Result<Answer, String> {
        let mut b = self
            .client
            .post(self.url(path))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(i) = idem {
            b = b.header("idempotency-key", i);
        }
        let r = b.send().await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// GET with a bearer key.
    pub async fn get(&self, path: &str, key: &str) -> Result<Answer, String> {
        let r = self
            .client
            .get(self.url(path))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// POST as admin expecting 200 or 201; the body.
    async fn admin_create(
        &self,
        path: &str,
        body: Value,
        idem: Option<&str>,
    ) -> Result<Value, String> {
        let (s, v) = self.post(path, &self.admin_key, &body, idem).await?;
        if s == 200 || s == 201 {
            Ok(v)
        } else {
            Err(format!("POST {path} answered {s}: {v}"))
        }
    }

    /// A merchant and a merchant API key: (merchant id, key).
    pub async fn merchant(&self, name: &str) -> Result<(String, String), String> {
        let m = self
            .admin_create(
                "/v1/merchants",
                json!({ "name": name, "city": "SHANGHAI", "mcc": "5812" }),
                None,
            )
            .await?;
        let mid = need(&m, "id", "create merchant")?;
        let k = self
            .admin_create(
                "/v1/api-keys",
                json!({ "role": "merchant", "subject_id": mid }),
                None,
            )
            .await?;
        Ok((mid, need(&k, "secret", "merchant key")?))
    }

    /// A customer of `class` with `funds` (decimal string) in the wallet, a
    /// consumer key and an enrolled device.
    pub async fn consumer(&self, class: &str, funds: &str) -> Result<Consumer, String> {
        let cus = self
            .admin_create("/v1/customers", json!({ "account_class": class }), None)
            .await?;
        let customer_id = need(&cus, "id", "create customer")?;
        self.admin_create(
            &format!("/v1/customers/{customer_id}/topups"),
            json!({ "amount": funds }),
            Some(&format!("bench-topup-{customer_id}")),
        )
        .await?;
        let k = self
            .admin_create(
                "/v1/api-keys",
                json!({ "role": "consumer", "subject_id": customer_id }),
                None,
            )
            .await?;
        let key = need(&k, "secret", "consumer key")?;
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "key generation failed")?;
        let device = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| "bad key")?;
        let (s, d) = self
            .post(
                "/v1/devices",
                &key,
                &json!({ "public_key": URL_SAFE_NO_PAD.encode(device.public_key().as_ref()) }),
                None,
            )
            .await?;
        if s != 201 {
            return Err(format!("enroll device answered {s}: {d}"));
        }
        let device_id: DeviceId = need(&d, "id", "enroll device")?
            .parse()
            .map_err(|e: qrgate_core::IdError| e.to_string())?;
        let handle = d["handles"][0]
            .as_str()
            .and_then(|h| h.parse().ok())
            .ok_or_else(|| format!("enroll device: no sealed handle in {d}"))?;
        Ok(Consumer {
            customer_id,
            key,
            device,
            device_id,
            handle,
        })
    }

    /// The customer's wallet balance, a decimal string, as the admin sees it.
    pub async fn balance(&self, customer_id: &str) -> Result<String, String> {
        let (s, v) = self
            .get(&format!("/v1/customers/{customer_id}"), &self.admin_key)
            .await?;
        if s != 200 {
            return Err(format!("GET customer answered {s}: {v}"));
        }
        need(&v, "balance", "customer")
    }
}

/// A customer with a consumer key and an enrolled device key.
pub struct Consumer {
    pub customer_id: String,
    pub key: String,
    pub device: Ed25519KeyPair,
    pub device_id: DeviceId,
    /// One sealed handle, put in every code: the load tool does not need
    /// its codes unlinkable (a wallet would use a fresh one per code).
    pub handle: SealedHandle,
}

impl Consumer {
    /// A payment token signed offline by the device, valid for 60 s.
    pub fn token(&self, rng: &SystemRandom) -> Result<String, String> {
        let holder = Holder::Device {
            sealed: self.handle,
        };
        let claims = TokenClaims::new(holder, now(), 60, rng).map_err(|e| e.to_string())?;
        Ok(claims.sign_with(&self.device))
    }
}

/// The merchant charges a consumer's payment code (`POST /v1/payments`).
pub async fn charge(
    t: &Target,
    merchant_key: &str,
    auth_code: &str,
    amount: &str,
    idem: &str,
) -> Result<Answer, String> {
    t.post(
        "/v1/payments",
        merchant_key,
        &json!({ "auth_code": auth_code, "amount": amount }),
        Some(idem),
    )
    .await
}

pub fn need(v: &Value, field: &str, what: &str) -> Result<String, String> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{what}: no {field} in {v}"))
}

/// Wall-clock time (the load generator runs outside the gateway's Clock).
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Timestamp::from_unix_millis(i64::try_from(ms).unwrap_or(0))
}
