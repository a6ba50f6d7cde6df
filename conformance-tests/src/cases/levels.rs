//! Devices, PINs and the risk levels they reach (A, B and the class caps), and cards.

use super::*;

pub(super) fn device() -> Result<Ed25519KeyPair, Stop> {
    let rng = ring::rand::SystemRandom::new();
    let doc =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| fail("a device key", "rng failed"))?;
    Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| fail("a device key", "bad key"))
}

/// Enroll a device key for the consumer: (device id, key id).
pub(super) async fn enroll(c: &mut Ctx, ck: &str, kp: &Ed25519KeyPair) -> Result<Enrolled, Stop> {
    let r = c
        .call(
            "POST",
            "/v1/devices",
            Some(ck),
            // The suite's customers use one PIN; once it is set, enrolling a
            // device needs it (a gateway ignores it before).
            Some(json!({ "public_key": URL_SAFE_NO_PAD.encode(kp.public_key().as_ref()), "pin": "493817" })),
            None,
        )
        .await?;
    expect(&r, 201, None)?;
    let id = field(&r, "id")?
        .parse()
        .map_err(|e: qrgate_core::IdError| fail("a device id", e.to_string()))?;
    let handles = r.json["handles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str()?.parse().ok())
        .collect::<Vec<SealedHandle>>();
    if handles.is_empty() {
        return Err(fail(
            "sealed handles in the enrolment answer (handles)",
            r.json.to_string(),
        ));
    }
    Ok(Enrolled {
        id,
        handles,
        next: Default::default(),
    })
}

/// An enrolled device: its id, and the sealed handles that name it in the
/// codes it signs (a fresh one for each code).
pub(super) struct Enrolled {
    pub(super) id: qrgate_core::id::DeviceId,
    handles: Vec<SealedHandle>,
    next: std::sync::atomic::AtomicUsize,
}

/// A payment token signed offline by an enrolled device (possession).
pub(super) fn signed_token(kp: &Ed25519KeyPair, device: &Enrolled) -> Result<String, Stop> {
    let now = Timestamp::from_unix_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
        )
        .unwrap_or(0),
    );
    let i = device
        .next
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let sealed = device.handles[i % device.handles.len()];
    let claims = qrgate_codes::cpm::TokenClaims::new(
        qrgate_codes::cpm::Holder::Device { sealed },
        now,
        60,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| fail("a token", e.to_string()))?;
    Ok(claims.sign_with(kp))
}

/// A device-signed payment token from a freshly enrolled device.
pub(super) async fn device_token(
    c: &mut Ctx,
    ck: &str,
    kp: &Ed25519KeyPair,
) -> Result<String, Stop> {
    let d = enroll(c, ck, kp).await?;
    signed_token(kp, &d)
}

/// Charge a device-signed token; if it needs step-up, confirm with the PIN.
pub(super) async fn pay_stepped_up(
    c: &mut Ctx,
    mk: &str,
    ck: &str,
    kp: &Ed25519KeyPair,
    d: &Enrolled,
    amount: &str,
) -> Result<crate::client::Resp, Stop> {
    let token = signed_token(kp, d)?;
    let r = c.charge(mk, &token, amount).await?;
    if r.status != 201 || r.json["status"] != "requires_action" {
        return Ok(r);
    }
    let id = field(&r, "id")?.to_owned();
    c.post_money(
        &format!("/v1/payments/{id}/confirm"),
        ck,
        json!({ "pin": "493817" }),
    )
    .await
}

pub(super) async fn set_pin(c: &mut Ctx, ck: &str) -> Outcome {
    let r = c
        .call(
            "POST",
            "/v1/me/pin",
            Some(ck),
            Some(json!({ "pin": "493817" })),
            None,
        )
        .await?;
    expect(&r, 200, None)
}

/// A customer able to pay at level A: agreement, PIN, device, certificate.
pub(super) struct LevelA {
    key: String,
    device: Ed25519KeyPair,
    device_ids: Enrolled,
    certificate: Ed25519KeyPair,
    certificate_id: String,
}

pub(super) async fn level_a_customer(
    c: &mut Ctx,
    topup: &str,
    class: &str,
    cap: &str,
) -> Result<LevelA, Stop> {
    let (id, key) = c.customer_with(topup, class, Some(cap)).await?;
    set_pin(c, &key).await?;
    let device = device()?;
    let device_ids = enroll(c, &key, &device).await?;
    let certificate = self::device()?;
    let r = c
        .as_admin(
            "POST",
            &format!("/v1/customers/{id}/certificates"),
            Some(
                json!({ "public_key": URL_SAFE_NO_PAD.encode(certificate.public_key().as_ref()) }),
            ),
        )
        .await?;
    expect(&r, 201, None)?;
    let certificate_id = field(&r, "id")?.to_owned();
    c.created(format!("certificate {certificate_id}"));
    Ok(LevelA {
        key,
        device,
        device_ids,
        certificate,
        certificate_id,
    })
}

/// The confirmation message of spec/formats.md (confirmation signatures), signed.
pub(super) fn sign_confirmation(kp: &Ed25519KeyPair, payment: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(kp.sign(&confirmation_message(payment)).as_ref())
}

/// A device's confirmation asserting its biometric check passed
/// (spec/formats.md: the message followed by `\0biometric`).
pub(super) fn sign_biometric_confirmation(
    kp: &Ed25519KeyPair,
    payment: &serde_json::Value,
) -> String {
    let mut msg = confirmation_message(payment);
    msg.extend_from_slice(b"\0biometric");
    URL_SAFE_NO_PAD.encode(kp.sign(&msg).as_ref())
}

pub(super) fn confirmation_message(payment: &serde_json::Value) -> Vec<u8> {
    format!(
        "qrgate-confirm-v1\0{}\0{}\0{}\0{}",
        payment["id"].as_str().unwrap_or_default(),
        payment["amount"].as_str().unwrap_or_default(),
        payment["currency"].as_str().unwrap_or("CNY"),
        payment["merchant_id"].as_str().unwrap_or_default(),
    )
    .into_bytes()
}

/// Charge a device-signed token; when the gateway asks for PIN + certificate,
/// confirm with both. Any other answer is returned as it came.
pub(super) async fn pay_at_a(
    c: &mut Ctx,
    mk: &str,
    a: &LevelA,
    amount: &str,
) -> Result<crate::client::Resp, Stop> {
    let token = signed_token(&a.device, &a.device_ids)?;
    let r = c.charge(mk, &token, amount).await?;
    if r.status != 201 || r.json["status"] != "requires_action" {
        return Ok(r);
    }
    check(
        r.json["next_action"]["elements"] == json!(["pin", "digital_certificate"]),
        "next_action names the PIN and the certificate",
        r.body.clone(),
    )?;
    let id = field(&r, "id")?.to_owned();
    let sig = sign_confirmation(&a.certificate, &r.json);
    c.post_money(
        &format!("/v1/payments/{id}/confirm"),
        &a.key,
        json!({ "pin": "493817", "certificate_id": a.certificate_id, "certificate_signature": sig }),
    )
    .await
}

pub(super) async fn limit_a(c: &mut Ctx) -> Outcome {
    separate_caps_only(c).await?;
    let (_, mk) = c.merchant().await?;
    let a = level_a_customer(c, "20000.00", "III", "11000.00").await?;
    for _ in 0..2 {
        let r = pay_at_a(c, &mk, &a, "5500.00").await?;
        expect(&r, 200, None)?;
        check(
            r.json["status"] == "succeeded" && r.json["risk_level"] == "A",
            "5,500.00 succeeded at level A",
            r.body.clone(),
        )?;
    }
    // 11,000.00 used, the agreed cap exactly; B cannot take 5,000.01 either.
    let r = pay_at_a(c, &mk, &a, "5000.01").await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    check(
        r.rule() == "BCP-LIMIT-A-DAILY",
        "rule BCP-LIMIT-A-DAILY cited",
        r.rule().to_owned(),
    )?;
    check(
        c.balance(&a.key).await? == "9000.00",
        "11,000.00 charged in total",
        "another balance",
    )
}

/// A yearly class cap, reached in one A-level payment; a fen more refused.
pub(super) async fn class_cap(c: &mut Ctx, class: &str, cap: &str, rule: &str) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let a = level_a_customer(c, "250000.00", class, "250000.00").await?;
    let r = pay_at_a(c, &mk, &a, cap).await?;
    expect(&r, 200, None)?;
    check(
        r.json["status"] == "succeeded" && r.json["risk_level"] == "A",
        format!("{cap} succeeded at level A"),
        r.body.clone(),
    )?;
    let r = pay_at_a(c, &mk, &a, "0.01").await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    check(
        r.rule() == rule,
        format!("rule {rule} cited"),
        r.rule().to_owned(),
    )
}

pub(super) async fn class_two(c: &mut Ctx) -> Outcome {
    separate_caps_only(c).await?;
    class_cap(c, "II", "100000.00", "BCP-ACCT-CLASS-II").await
}

pub(super) async fn class_three(c: &mut Ctx) -> Outcome {
    separate_caps_only(c).await?;
    class_cap(c, "III", "200000.00", "BCP-ACCT-CLASS-III").await
}

pub(super) async fn limit_b(c: &mut Ctx) -> Outcome {
    separate_caps_only(c).await?;
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("7000.00", "II").await?;
    set_pin(c, &ck).await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, "1000.00").await?, 201, None)?;
    let kp = device()?;
    let d = enroll(c, &ck, &kp).await?;
    for (amount, ok) in [("4999.99", true), ("0.01", true), ("0.01", false)] {
        let r = pay_stepped_up(c, &mk, &ck, &kp, &d, amount).await?;
        if ok {
            check(
                r.status < 300 && r.json["risk_level"] == "B",
                format!("{amount} accepted at level B"),
                r.body.clone(),
            )?;
        } else {
            expect(&r, 402, Some("limit_exceeded"))?;
            check(
                r.rule() == "BCP-LIMIT-B-DAILY",
                "rule BCP-LIMIT-B-DAILY cited",
                r.rule().to_owned(),
            )?;
        }
    }
    check(
        c.balance(&ck).await? == "1000.00",
        "6,000.00 charged in total",
        "another balance",
    )
}

/// The effective number of a rule, as the target states it (`GET /v1/rules`).
/// A rule's effective number as the target states it: `Ok(None)` when the
/// target lists the rule without one (an optional limit left off).
pub(super) async fn stated(c: &mut Ctx, id: &str) -> Result<Option<i64>, Stop> {
    let r = c.call("GET", "/v1/rules", None, None, None).await?;
    expect(&r, 200, None)?;
    let rule = r.json["data"]
        .as_array()
        .and_then(|rules| rules.iter().find(|x| x["id"] == id))
        .ok_or_else(|| fail(format!("{id} in GET /v1/rules"), r.body.clone()))?;
    Ok(rule["value"].as_i64())
}

pub(super) async fn rule_value(c: &mut Ctx, id: &str) -> Result<i64, Stop> {
    stated(c, id)
        .await?
        .ok_or_else(|| fail(format!("{id} with a value in GET /v1/rules"), "no value"))
}

/// Minor units as a decimal amount string.
pub(super) fn cny(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// Link a sandbox test card; SKIP when the target's processor does not take it.
pub(super) async fn link_card(c: &mut Ctx, ck: &str, number: &str) -> Result<String, Stop> {
    let r = c
        .call(
            "POST",
            "/v1/me/cards",
            Some(ck),
            Some(json!({ "number": number, "exp_month": 12, "exp_year": 2099 })),
            None,
        )
        .await?;
    if r.status == 422 && r.code() == "card_not_supported" {
        return Err(Stop::Skip(format!(
            "the target's card processor does not take the sandbox test card {number}"
        )));
    }
    expect(&r, 201, None)?;
    Ok(field(&r, "id")?.to_owned())
}

/// The consumer pays a new order of the merchant from a funding source.
pub(super) async fn pay_order_from(
    c: &mut Ctx,
    mk: &str,
    ck: &str,
    amount: &str,
    source: &str,
) -> Result<crate::client::Resp, Stop> {
    let payload = order_code(c, mk, amount).await?;
    c.post_money(
        "/v1/scans",
        ck,
        json!({ "payload": payload, "funding_source": source }),
    )
    .await
}

pub(super) fn cites(r: &crate::client::Resp, rule: &str) -> Outcome {
    check(
        r.rule() == rule,
        format!("rule {rule} cited"),
        r.rule().to_owned(),
    )
}
