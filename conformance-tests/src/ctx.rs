//! What a case works with: the target, the admin key, helpers that create
//! the case's own test parties, and the transcript kept as evidence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::client::{Exchange, Http, Req, Resp};

/// Why a case did not pass.
#[derive(Debug, Clone)]
pub enum Stop {
    Fail { expected: String, observed: String },
    Skip(String),
}

pub type Outcome = Result<(), Stop>;

pub fn fail(expected: impl Into<String>, observed: impl Into<String>) -> Stop {
    Stop::Fail {
        expected: expected.into(),
        observed: observed.into(),
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

pub struct Ctx {
    pub http: Http,
    pub admin: String,
    /// Short tag of this run, in the names of everything it creates.
    pub tag: String,
    pub exchanges: Vec<Exchange>,
    /// Every object the suite created (shared by all cases of a run).
    pub created: Arc<Mutex<Vec<String>>>,
}

pub fn summary(r: &Resp) -> String {
    let body: String = r.body.chars().take(400).collect();
    format!("HTTP {} {}", r.status, body)
}

impl Ctx {
    pub fn idem(&self) -> String {
        format!("qgc-{}-{}", self.tag, SEQ.fetch_add(1, Ordering::SeqCst))
    }

    pub(crate) fn created(&self, what: String) {
        if let Ok(mut c) = self.created.lock() {
            c.push(what);
        }
    }

    pub async fn send(&mut self, r: Req<'_>) -> Result<Resp, Stop> {
        let what = format!("{} {}", r.method, r.path);
        let (resp, ex) = self
            .http
            .send(r)
            .await
            .map_err(|e| fail(format!("an answer to {what}"), e))?;
        self.exchanges.push(ex);
        Ok(resp)
    }

    /// A JSON request (`body` serialized), with an Idempotency-Key when given.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        idem: Option<String>,
    ) -> Result<Resp, Stop> {
        self.send(Req {
            method,
            path: path.to_owned(),
            key,
            body: body.map(|b| b.to_string().into_bytes()),
            content_type: None,
            idempotency_key: idem,
        })
        .await
    }

    /// A call with the admin key (no Idempotency-Key).
    pub async fn as_admin(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Resp, Stop> {
        let admin = self.admin.clone();
        self.call(method, path, Some(&admin), body, None).await
    }

    /// A money-moving POST with a fresh Idempotency-Key.
    pub async fn post_money(&mut self, path: &str, key: &str, body: Value) -> Result<Resp, Stop> {
        let i = self.idem();
        self.call("POST", path, Some(key), Some(body), Some(i))
            .await
    }

    /// Money-moving POSTs by `key`, each with a fresh Idempotency-Key and
    /// on its own task, released together by a barrier; the answers in
    /// order (every exchange is kept as evidence).
    pub async fn post_together(
        &mut self,
        key: &str,
        requests: Vec<(String, Option<Value>)>,
    ) -> Result<Vec<Resp>, Stop> {
        let barrier = Arc::new(tokio::sync::Barrier::new(requests.len()));
        let mut tasks = Vec::new();
        for (path, body) in requests {
            let (http, key, idem, barrier) = (
                self.http.clone(),
                key.to_owned(),
                self.idem(),
                barrier.clone(),
            );
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                http.send(Req {
                    method: "POST",
                    path,
                    key: Some(&key),
                    body: body.map(|b| b.to_string().into_bytes()),
                    content_type: None,
                    idempotency_key: Some(idem),
                })
                .await
            }));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            let (r, ex) = t
                .await
                .map_err(|e| fail("a finished request", e.to_string()))?
                .map_err(|e| fail("an answer", e))?;
            self.exchanges.push(ex);
            out.push(r);
        }
        Ok(out)
    }

    /// A new merchant (named after this run) and its key.
    pub async fn merchant(&mut self) -> Result<(String, String), Stop> {
        self.merchant_with(json!({})).await
    }

    /// A small merchant onboarded with a personal ID only, of the person `owner_ref`.
    pub async fn small_merchant(&mut self, owner_ref: &str) -> Result<(String, String), Stop> {
        self.merchant_with(json!({ "category": "small_personal", "owner_ref": owner_ref }))
            .await
    }

    /// A new merchant with these fields added to the defaults.
    pub async fn merchant_with(&mut self, extra: Value) -> Result<(String, String), Stop> {
        let admin = self.admin.clone();
        let name = format!("CONFORMANCE {}", self.tag);
        let mut body = json!({ "name": name, "city": "SHANGHAI", "mcc": "5812" });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let m = self
            .call("POST", "/v1/merchants", Some(&admin), Some(body), None)
            .await?;
        expect(&m, 201, None)?;
        let id = field(&m, "id")?.to_owned();
        self.created(format!("merchant {id}"));
        let k = self
            .call(
                "POST",
                "/v1/api-keys",
                Some(&admin),
                Some(json!({ "role": "merchant", "subject_id": id })),
                None,
            )
            .await?;
        expect(&k, 201, None)?;
        let key = field(&k, "secret")?.to_owned();
        self.created(format!("api key {} (merchant)", field(&k, "id")?));
        Ok((id, key))
    }

    /// A new customer with a wallet funded with `topup` CNY, and its key.
    pub async fn customer(&mut self, topup: &str, class: &str) -> Result<(String, String), Stop> {
        self.customer_with(topup, class, None).await
    }

    /// A customer, optionally with a level-A agreement (daily cap, decimal string).
    pub async fn customer_with(
        &mut self,
        topup: &str,
        class: &str,
        level_a_daily_cap: Option<&str>,
    ) -> Result<(String, String), Stop> {
        let admin = self.admin.clone();
        let mut body = json!({ "account_class": class });
        if let Some(cap) = level_a_daily_cap {
            body["level_a_daily_cap"] = json!(cap);
        }
        let c = self
            .call("POST", "/v1/customers", Some(&admin), Some(body), None)
            .await?;
        expect(&c, 201, None)?;
        let id = field(&c, "id")?.to_owned();
        self.created(format!("customer {id}"));
        if topup != "0" {
            let t = self
                .post_money(
                    &format!("/v1/customers/{id}/topups"),
                    &admin,
                    json!({ "amount": topup }),
                )
                .await?;
            expect(&t, 201, None)?;
        }
        let k = self
            .call(
                "POST",
                "/v1/api-keys",
                Some(&admin),
                Some(json!({ "role": "consumer", "subject_id": id })),
                None,
            )
            .await?;
        expect(&k, 201, None)?;
        let key = field(&k, "secret")?.to_owned();
        self.created(format!("api key {} (consumer)", field(&k, "id")?));
        Ok((id, key))
    }

    /// A fresh online payment code: (numeric, qr).
    pub async fn payment_code(&mut self, consumer_key: &str) -> Result<(String, String), Stop> {
        let r = self
            .call("POST", "/v1/payment-codes", Some(consumer_key), None, None)
            .await?;
        expect(&r, 201, None)?;
        Ok((
            field(&r, "numeric")?.to_owned(),
            field(&r, "qr")?.to_owned(),
        ))
    }

    /// The merchant charges a payment code.
    pub async fn charge(
        &mut self,
        merchant_key: &str,
        code: &str,
        amount: &str,
    ) -> Result<Resp, Stop> {
        self.post_money(
            "/v1/payments",
            merchant_key,
            json!({ "auth_code": code, "amount": amount }),
        )
        .await
    }

    pub async fn balance(&mut self, consumer_key: &str) -> Result<String, Stop> {
        let r = self
            .call("GET", "/v1/me", Some(consumer_key), None, None)
            .await?;
        expect(&r, 200, None)?;
        Ok(field(&r, "balance")?.to_owned())
    }

    /// A merchant and a funded customer with a fresh code charged for `amount`.
    pub async fn paid(&mut self, amount: &str) -> Result<(String, String, String, Resp), Stop> {
        let (_, mk) = self.merchant().await?;
        let (_, ck) = self.customer("900.00", "II").await?;
        let (code, _) = self.payment_code(&ck).await?;
        let r = self.charge(&mk, &code, amount).await?;
        expect(&r, 201, None)?;
        Ok((mk, ck, code, r))
    }
}

pub fn check(ok: bool, expected: impl Into<String>, observed: impl Into<String>) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(fail(expected, observed))
    }
}

/// The response has this status (and error code, when given).
pub fn expect(r: &Resp, status: u16, code: Option<&str>) -> Outcome {
    let ok = r.status == status && code.is_none_or(|c| r.code() == c);
    let want = match code {
        Some(c) => format!("HTTP {status} with error code {c}"),
        None => format!("HTTP {status}"),
    };
    check(ok, want, summary(r))
}

/// A refusal: any 4xx, optionally with one of these codes.
pub fn expect_refused(r: &Resp, codes: &[&str]) -> Outcome {
    let ok = (400..500).contains(&r.status) && (codes.is_empty() || codes.contains(&r.code()));
    check(
        ok,
        format!(
            "a 4xx refusal{}",
            if codes.is_empty() {
                String::new()
            } else {
                format!(" with code {}", codes.join(" or "))
            }
        ),
        summary(r),
    )
}

pub fn field<'a>(r: &'a Resp, name: &str) -> Result<&'a str, Stop> {
    r.json[name]
        .as_str()
        .ok_or_else(|| fail(format!("a response with \"{name}\""), summary(r)))
}
