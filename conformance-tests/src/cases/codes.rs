//! Merchant codes (EMV, signatures, offline checks) and payment codes (dynamic, single use, no card data).

use super::*;

pub(super) async fn static_emv(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let payload = static_code(c, &mk).await?;
    let p = strict_emv(&payload)?;
    check(
        p.value(1) == Some("11"),
        "point of initiation 11 (static)",
        format!("{:?}", p.value(1)),
    )?;
    check(
        p.value(54).is_none(),
        "no amount in a static code",
        format!("{:?}", p.value(54)),
    )
}

pub(super) async fn order_emv(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let payload = order_code(c, &mk, "36.50").await?;
    let p = strict_emv(&payload)?;
    check(
        p.value(1) == Some("12"),
        "point of initiation 12 (dynamic)",
        format!("{:?}", p.value(1)),
    )?;
    check(
        p.value(54) == Some("36.50"),
        "amount 36.50 in tag 54",
        format!("{:?}", p.value(54)),
    )
}

pub(super) async fn verifies_offline(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let keys = published_keys(c).await?;
    let now = Timestamp::from_unix_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
        )
        .unwrap_or(0),
    );
    for payload in [
        static_code(c, &mk).await?,
        order_code(c, &mk, "1.00").await?,
    ] {
        merchant::verify(&payload, &keys, now)
            .map_err(|e| fail("the code verifies with a published key", e.to_string()))?;
    }
    Ok(())
}

pub(super) fn reseal(body_without_crc: &str) -> String {
    let s = format!("{body_without_crc}6304");
    let crc = emv::crc_hex(s.as_bytes());
    format!("{s}{crc}")
}

pub(super) async fn tampered(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    let payload = static_code(c, &mk).await?;
    let p = emv::parse(&payload).map_err(|e| fail("a valid EMV payload", e.to_string()))?;
    let name = p.value(59).unwrap_or_default().to_owned();
    // A fraudster's printout: another name of the same length, CRC recomputed.
    let forged_name: String = name
        .chars()
        .map(|ch| {
            if ch == 'E' {
                'F'
            } else if ch.is_ascii_uppercase() {
                'E'
            } else {
                ch
            }
        })
        .collect();
    let body = &payload[..payload.len() - 8];
    let forged = reseal(&body.replacen(
        &format!("59{:02}{name}", name.chars().count()),
        &format!("59{:02}{forged_name}", forged_name.chars().count()),
        1,
    ));
    let r = c
        .call(
            "POST",
            "/v1/codes/verify",
            None,
            Some(json!({ "payload": forged })),
            None,
        )
        .await?;
    expect_refused(&r, &[])?;
    let r = c
        .post_money(
            "/v1/scans",
            &ck,
            json!({ "payload": forged, "amount": "1.00" }),
        )
        .await?;
    expect_refused(&r, &[])?;
    let truncated = &payload[..payload.len() - 12];
    let r = c
        .call(
            "POST",
            "/v1/codes/verify",
            None,
            Some(json!({ "payload": truncated })),
            None,
        )
        .await?;
    expect_refused(&r, &[])?;
    check(
        c.balance(&ck).await? == "100.00",
        "no money moved",
        "balance changed",
    )
}

pub(super) async fn foreign_key(c: &mut Ctx) -> Outcome {
    let (_, ck) = c.customer("100.00", "II").await?;
    let rng = ring::rand::SystemRandom::new();
    let kid = KeyId::generate(&rng).map_err(|e| fail("a key id", e.to_string()))?;
    let ring_ = Keyring::from_seed(kid, &[9; 32], Timestamp::from_unix_millis(0))
        .map_err(|e| fail("a keyring", e.to_string()))?;
    let code = merchant::MerchantCode {
        kind: merchant::MerchantCodeKind::Static {
            code_id: qrgate_core::id::StaticCodeId::from_bytes([7; 16]),
        },
        display: merchant::MerchantDisplay {
            name: "NOT A MERCHANT".into(),
            city: "SHANGHAI".into(),
            country: "CN".into(),
            mcc: "5812".into(),
            currency: qrgate_core::Currency::CNY,
            postal_code: None,
            language: None,
        },
    };
    let payload = code
        .issue(&ring_)
        .map_err(|e| fail("a signed code", e.to_string()))?;
    let r = c
        .call(
            "POST",
            "/v1/codes/verify",
            None,
            Some(json!({ "payload": payload })),
            None,
        )
        .await?;
    expect_refused(&r, &["code_unknown_key"])?;
    let r = c
        .post_money(
            "/v1/scans",
            &ck,
            json!({ "payload": payload, "amount": "1.00" }),
        )
        .await?;
    expect_refused(&r, &[])
}

pub(super) async fn cpm_dynamic(c: &mut Ctx) -> Outcome {
    let (_, ck) = c.customer("0", "II").await?;
    let a = c.payment_code(&ck).await?;
    let b = c.payment_code(&ck).await?;
    check(
        a.0 != b.0 && a.1 != b.1,
        "two different codes",
        format!("{a:?} and {b:?}"),
    )
}

pub(super) async fn cpm_ttl(c: &mut Ctx) -> Outcome {
    let (_, ck) = c.customer("0", "II").await?;
    let r = c
        .call("POST", "/v1/payment-codes", Some(&ck), None, None)
        .await?;
    expect(&r, 201, None)?;
    let secs = r.json["valid_seconds"].as_i64().unwrap_or(i64::MAX);
    check(
        (1..=60).contains(&secs),
        "valid_seconds between 1 and 60",
        secs.to_string(),
    )?;
    let qr = field(&r, "qr")?.to_owned();
    let t =
        UnverifiedToken::decode(&qr).map_err(|e| fail("a qrgate payment token", e.to_string()))?;
    check(
        t.claims.ttl_seconds <= 60,
        "the token's own validity at most 60 s",
        t.claims.ttl_seconds.to_string(),
    )
}

pub(super) async fn single_use(c: &mut Ctx) -> Outcome {
    let (mk, ck, code, _) = c.paid("10.00").await?;
    let r = c.charge(&mk, &code, "10.00").await?;
    expect_refused(&r, &[])?;
    check(
        c.balance(&ck).await? == "890.00",
        "charged once (890.00 left)",
        "another balance",
    )
}

pub(super) async fn single_use_failed(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (cid, ck) = c.customer("5.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    let r = c.charge(&mk, &code, "10.00").await?;
    expect_refused(&r, &["insufficient_funds"])?;
    let admin = c.admin.clone();
    let t = c
        .post_money(
            &format!("/v1/customers/{cid}/topups"),
            &admin,
            json!({ "amount": "100.00" }),
        )
        .await?;
    expect(&t, 201, None)?;
    let r = c.charge(&mk, &code, "10.00").await?;
    expect_refused(&r, &[])?;
    check(
        c.balance(&ck).await? == "105.00",
        "nothing charged",
        "money moved",
    )
}

pub(super) async fn single_use_race(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("500.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    let charge = json!({ "auth_code": code, "amount": "10.00" });
    let answers = c
        .post_together(&mk, vec![("/v1/payments".into(), Some(charge)); 16])
        .await?;
    let ok = answers.iter().filter(|r| r.status == 201).count();
    check(ok == 1, "exactly one success", format!("{ok} successes"))?;
    check(
        c.balance(&ck).await? == "490.00",
        "charged once",
        "another balance",
    )
}

/// Mainland phone numbers (1 + 10 digits) and 16-19 digit card-like runs.
pub(super) fn sensitive_digits(value: &str) -> Option<String> {
    value
        .split(|ch: char| !ch.is_ascii_digit())
        .find(|d| (d.len() == 11 && d.starts_with('1')) || (16..=19).contains(&d.len()))
        .map(str::to_owned)
}

pub(super) async fn no_sensitive(c: &mut Ctx) -> Outcome {
    let (mid, mk) = c.merchant().await?;
    let (cid, ck) = c.customer("0", "II").await?;
    let (numeric, qr) = c.payment_code(&ck).await?;
    let mut values = vec![qr.clone()];
    for payload in [
        static_code(c, &mk).await?,
        order_code(c, &mk, "1.00").await?,
    ] {
        let p = emv::parse(&payload).map_err(|e| fail("a valid EMV payload", e.to_string()))?;
        // Leaf values only: a template's raw text joins its sub-fields' digits.
        for f in p.fields() {
            match &f.subfields {
                Some(subs) => values.extend(subs.iter().map(|s| s.value.clone())),
                None => values.push(f.value.clone()),
            }
        }
    }
    for v in &values {
        check(
            !v.contains(&cid) && !v.contains(cid.trim_start_matches("cus_")),
            "no customer id inside",
            v.clone(),
        )?;
        check(!v.contains('@'), "no e-mail address inside", v.clone())?;
        if let Some(d) = sensitive_digits(v) {
            return Err(fail("no phone or card number", format!("{d} in {v}")));
        }
    }
    check(
        numeric.len() == 18 && !numeric.contains(&mid),
        "an 18-digit code without identifiers",
        numeric,
    )
}
