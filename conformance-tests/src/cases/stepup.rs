//! Windows (cancel, refund, step-up, PIN lock), the block list, and stepping up with a PIN, an OTP or a biometric.

use super::*;

pub(super) async fn cancel_window(c: &mut Ctx) -> Outcome {
    let window = rule_value(c, "QG-CANCEL-WINDOW").await?;
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    let p = c.charge(&mk, &code, "10.00").await?;
    expect(&p, 201, None)?;
    let r = c
        .post_money(
            &format!("/v1/payments/{}/cancel", field(&p, "id")?),
            &mk,
            json!({}),
        )
        .await?;
    expect(&r, 200, None)?;
    check(
        c.balance(&ck).await? == "100.00",
        "the canceled payment paid back in full",
        "another balance",
    )?;
    if window > REFUND_WAIT_S {
        return Err(Stop::Skip(format!(
            "canceling inside the window works; watching the window ({window} s) close needs a target configured with QG-CANCEL-WINDOW of at most {REFUND_WAIT_S} s"
        )));
    }
    let (code, _) = c.payment_code(&ck).await?;
    let late = c.charge(&mk, &code, "10.00").await?;
    expect(&late, 201, None)?;
    tokio::time::sleep(std::time::Duration::from_secs(
        u64::try_from(window).unwrap_or(0) + 1,
    ))
    .await;
    let r = c
        .post_money(
            &format!("/v1/payments/{}/cancel", field(&late, "id")?),
            &mk,
            json!({}),
        )
        .await?;
    expect(&r, 409, Some("cancel_window_closed"))?;
    cites(&r, "QG-CANCEL-WINDOW")
}

/// Longest refund window this case waits out, seconds.
pub(super) const REFUND_WAIT_S: i64 = 20;

pub(super) async fn refund_window(c: &mut Ctx) -> Outcome {
    let window = rule_value(c, "BCP-REFUND-WINDOW").await?;
    check(
        window > 0 && window <= 365 * 86_400,
        "a refund window of at most 365 days",
        format!("{window} s"),
    )?;
    if window > REFUND_WAIT_S {
        return Err(Stop::Skip(format!(
            "the stated window ({window} s) is within the rule; watching it close needs a target configured with BCP-REFUND-WINDOW of at most {REFUND_WAIT_S} s"
        )));
    }
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    let p = c.charge(&mk, &code, "10.00").await?;
    expect(&p, 201, None)?;
    let path = format!("/v1/payments/{}/refunds", field(&p, "id")?);
    let early = c
        .post_money(
            &path,
            &mk,
            json!({ "amount": "1.00", "out_refund_no": "W1" }),
        )
        .await?;
    expect(&early, 201, None)?;
    tokio::time::sleep(std::time::Duration::from_secs(
        u64::try_from(window).unwrap_or(0) + 1,
    ))
    .await;
    let late = c
        .post_money(
            &path,
            &mk,
            json!({ "amount": "1.00", "out_refund_no": "W2" }),
        )
        .await?;
    expect(&late, 409, Some("refund_window_closed"))?;
    check(
        late.rule() == "BCP-REFUND-WINDOW",
        "rule BCP-REFUND-WINDOW cited",
        late.rule().to_owned(),
    )?;
    check(
        c.balance(&ck).await? == "91.00",
        "only the refund inside the window was paid back",
        "another balance",
    )
}

/// Longest step-up deadline this case waits out.
pub(super) const STEPUP_WAIT_MS: i64 = 20_000;

/// A customer with a PIN whose level-C cap is used up, and a payment of
/// 10.00 waiting for step-up: (consumer key, the payment, its created_at).
pub(super) async fn waiting_payment(
    c: &mut Ctx,
) -> Result<(String, crate::client::Resp, Timestamp), Stop> {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "II").await?;
    set_pin(c, &ck).await?;
    let kp = device()?;
    let d = enroll(c, &ck, &kp).await?;
    let token = signed_token(&kp, &d)?;
    expect(&c.charge(&mk, &token, "1000.00").await?, 201, None)?;
    let token = signed_token(&kp, &d)?;
    let r = c.charge(&mk, &token, "10.00").await?;
    expect(&r, 201, None)?;
    check(
        r.json["status"] == "requires_action",
        "status requires_action (over the level-C cap)",
        r.body.clone(),
    )?;
    let created = Timestamp::parse_rfc3339(field(&r, "created_at")?)
        .ok_or_else(|| fail("created_at in RFC 3339", r.body.clone()))?;
    Ok((ck, r, created))
}

pub(super) async fn stepup_ttl(c: &mut Ctx) -> Outcome {
    let (ck, r, created) = waiting_payment(c).await?;
    let deadline = r.json["next_action"]["expires_at"]
        .as_str()
        .and_then(Timestamp::parse_rfc3339)
        .ok_or_else(|| fail("next_action.expires_at in RFC 3339", r.body.clone()))?;
    let ttl = deadline.unix_millis() - created.unix_millis();
    check(
        ttl > 0 && ttl <= 300_000,
        "a confirmation deadline at most 300 s after creation",
        format!("{ttl} ms"),
    )?;
    if ttl > STEPUP_WAIT_MS {
        return Err(Stop::Skip(format!(
            "the declared deadline ({ttl} ms) is within the rule; watching it pass needs a target configured with QG-STEPUP-TTL of at most {} s",
            STEPUP_WAIT_MS / 1000
        )));
    }
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::try_from(ttl).unwrap_or(0) + 1000,
    ))
    .await;
    let id = field(&r, "id")?.to_owned();
    let late = c
        .post_money(
            &format!("/v1/payments/{id}/confirm"),
            &ck,
            json!({ "pin": "493817" }),
        )
        .await?;
    // Refused as expired, or as already canceled when a sweeper got there first.
    expect_refused(&late, &["payment_expired", "payment_state_conflict"])?;
    let p = c
        .call("GET", &format!("/v1/payments/{id}"), Some(&ck), None, None)
        .await?;
    check(
        p.json["status"] == "canceled",
        "the lapsed payment is canceled",
        p.body.clone(),
    )?;
    check(
        c.balance(&ck).await? == "1000.00",
        "only the first 1,000.00 was charged",
        "another balance",
    )
}

pub(super) async fn pin_lock_minutes(c: &mut Ctx) -> Outcome {
    // The gateway's own clock: the lock starts after this payment was created.
    let (ck, r, created) = waiting_payment(c).await?;
    let path = format!("/v1/payments/{}/confirm", field(&r, "id")?);
    for _ in 0..5 {
        let w = c.post_money(&path, &ck, json!({ "pin": "000001" })).await?;
        expect_refused(&w, &["pin_incorrect", "pin_locked"])?;
    }
    let me = c.call("GET", "/v1/me", Some(&ck), None, None).await?;
    expect(&me, 200, None)?;
    let until = me.json["pin_locked_until"]
        .as_str()
        .and_then(Timestamp::parse_rfc3339)
        .ok_or_else(|| fail("pin_locked_until on GET /v1/me", me.body.clone()))?;
    let lock = until.unix_millis() - created.unix_millis();
    check(
        lock >= 30 * 60 * 1000,
        "the PIN locked until at least 30 minutes after the payment was created",
        format!("{} s", lock / 1000),
    )?;
    let r = c.post_money(&path, &ck, json!({ "pin": "493817" })).await?;
    expect_refused(&r, &["pin_locked"])
}

pub(super) async fn block(c: &mut Ctx, subject: &str) -> Result<String, Stop> {
    let r = c
        .as_admin(
            "POST",
            "/v1/blocks",
            Some(json!({ "subject_id": subject, "reason": "conformance run: blocked on purpose" })),
        )
        .await?;
    expect(&r, 201, None)?;
    let id = field(&r, "id")?.to_owned();
    c.created(format!("block {id}"));
    Ok(id)
}

pub(super) async fn blocklist(c: &mut Ctx) -> Outcome {
    let (mid, mk) = c.merchant().await?;
    let (cid, ck) = c.customer("100.00", "II").await?;
    let b = block(c, &cid).await?;
    let (code, _) = c.payment_code(&ck).await?;
    let r = c.charge(&mk, &code, "1.00").await?;
    expect(&r, 402, Some("party_blocked"))?;
    check(
        r.rule() == "QG-BLOCKLIST",
        "rule QG-BLOCKLIST cited",
        r.rule().to_owned(),
    )?;
    check(
        c.balance(&ck).await? == "100.00",
        "nothing charged to a blocked payer",
        "another balance",
    )?;
    let r = c
        .as_admin("POST", &format!("/v1/blocks/{b}/lift"), None)
        .await?;
    expect(&r, 200, None)?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, "1.00").await?, 201, None)?;
    block(c, &mid).await?;
    let (code, _) = c.payment_code(&ck).await?;
    let r = c.charge(&mk, &code, "1.00").await?;
    expect(&r, 402, Some("party_blocked"))?;
    check(
        c.balance(&ck).await? == "99.00",
        "one payment between the two blocks",
        "another balance",
    )
}

pub(super) async fn class_one(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "I").await?;
    set_pin(c, &ck).await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, "999.99").await?, 201, None)?;
    // Over the C cap, stepped up to B: level B has room, the class-I total does not.
    let kp = device()?;
    let d = enroll(c, &ck, &kp).await?;
    let r = pay_stepped_up(c, &mk, &ck, &kp, &d, "0.02").await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    check(
        r.rule() == "BCP-ACCT-CLASS-I",
        "rule BCP-ACCT-CLASS-I cited",
        r.rule().to_owned(),
    )?;
    check(
        c.balance(&ck).await? == "1000.01",
        "only 999.99 charged",
        "another balance",
    )
}

pub(super) async fn stepup(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "II").await?;
    set_pin(c, &ck).await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, "999.00").await?, 201, None)?;
    let kp = device()?;
    let token = device_token(c, &ck, &kp).await?;
    let r = c.charge(&mk, &token, "100.00").await?;
    expect(&r, 201, None)?;
    check(
        r.json["status"] == "requires_action",
        "status requires_action",
        r.body.clone(),
    )?;
    let id = field(&r, "id")?.to_owned();
    let path = format!("/v1/payments/{id}/confirm");
    let wrong = c.post_money(&path, &ck, json!({ "pin": "111119" })).await?;
    expect(&wrong, 422, Some("pin_incorrect"))?;
    let right = c.post_money(&path, &ck, json!({ "pin": "493817" })).await?;
    expect(&right, 200, None)?;
    check(
        right.json["status"] == "succeeded" && right.json["risk_level"] == "B",
        "succeeded at level B",
        right.body.clone(),
    )?;
    check(
        c.balance(&ck).await? == "901.00",
        "charged 1,099.00 in total",
        "another balance",
    )
}

/// The code of an authenticator app for `secret` (base32) now, by this machine's clock.
pub(super) fn totp_now(secret: &str) -> Result<String, Stop> {
    let key = qrgate_codes::otp::unbase32(secret)
        .ok_or_else(|| fail("a base32 OTP secret", secret.to_owned()))?;
    let now = Timestamp::from_unix_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
        )
        .unwrap_or(0),
    );
    let step = u64::try_from(qrgate_codes::otp::step_of(now)).unwrap_or(0);
    Ok(qrgate_codes::otp::totp(&key, step))
}

/// A customer with a PIN whose level-C cap is used up: (merchant key, consumer key).
pub(super) async fn c_cap_used(c: &mut Ctx) -> Result<(String, String), Stop> {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "II").await?;
    set_pin(c, &ck).await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, "1000.00").await?, 201, None)?;
    Ok((mk, ck))
}

/// An order of 10.00 the consumer pays, answered requires_action.
pub(super) async fn waiting_order(
    c: &mut Ctx,
    mk: &str,
    ck: &str,
) -> Result<crate::client::Resp, Stop> {
    let payload = order_code(c, mk, "10.00").await?;
    let r = c
        .post_money("/v1/scans", ck, json!({ "payload": payload }))
        .await?;
    expect(&r, 201, None)?;
    check(
        r.json["status"] == "requires_action",
        "status requires_action",
        r.body.clone(),
    )?;
    Ok(r)
}

pub(super) async fn stepup_otp(c: &mut Ctx) -> Outcome {
    let (mk, ck) = c_cap_used(c).await?;
    let e = c
        .call(
            "POST",
            "/v1/me/otp",
            Some(&ck),
            Some(json!({ "pin": "493817" })),
            None,
        )
        .await?;
    expect(&e, 201, None)?;
    let secret = field(&e, "secret")?.to_owned();
    let r = waiting_order(c, &mk, &ck).await?;
    check(
        r.json["next_action"]["accepts"]
            .as_array()
            .is_some_and(|a| a.contains(&json!(["pin", "one_time_password"]))),
        "next_action.accepts offers [pin, one_time_password]",
        r.body.clone(),
    )?;
    let code = totp_now(&secret)?;
    let path = format!("/v1/payments/{}/confirm", field(&r, "id")?);
    let done = c
        .post_money(&path, &ck, json!({ "pin": "493817", "otp": code }))
        .await?;
    expect(&done, 200, None)?;
    check(
        done.json["status"] == "succeeded"
            && done.json["risk_level"] == "B"
            && done.json["verification"]
                .as_array()
                .is_some_and(|v| v.contains(&json!("one_time_password"))),
        "succeeded at level B with the one-time password",
        done.body.clone(),
    )?;
    let again = waiting_order(c, &mk, &ck).await?;
    let path = format!("/v1/payments/{}/confirm", field(&again, "id")?);
    let r = c
        .post_money(&path, &ck, json!({ "pin": "493817", "otp": code }))
        .await?;
    expect(&r, 422, Some("otp_reused"))
}

pub(super) async fn stepup_biometric(c: &mut Ctx) -> Outcome {
    let (mk, ck) = c_cap_used(c).await?;
    let kp = device()?;
    let d = enroll(c, &ck, &kp).await?;
    let device_id = d.id.to_string();
    let r = waiting_order(c, &mk, &ck).await?;
    let path = format!("/v1/payments/{}/confirm", field(&r, "id")?);
    // Biometrics count only once turned on for the device, with the PIN.
    let off = c
        .post_money(
            &path,
            &ck,
            json!({ "device_id": device_id, "device_signature": sign_biometric_confirmation(&kp, &r.json), "biometric": true }),
        )
        .await?;
    expect(&off, 422, Some("biometric_not_enabled"))?;
    let on = c
        .call(
            "POST",
            &format!("/v1/devices/{device_id}/biometric"),
            Some(&ck),
            Some(json!({ "pin": "493817" })),
            None,
        )
        .await?;
    expect(&on, 200, None)?;
    let plain = c
        .post_money(
            &path,
            &ck,
            json!({ "device_id": device_id, "device_signature": sign_confirmation(&kp, &r.json), "biometric": true }),
        )
        .await?;
    expect(&plain, 422, Some("device_signature_invalid"))?;
    let done = c
        .post_money(
            &path,
            &ck,
            json!({ "device_id": device_id, "device_signature": sign_biometric_confirmation(&kp, &r.json), "biometric": true }),
        )
        .await?;
    expect(&done, 200, None)?;
    check(
        done.json["status"] == "succeeded"
            && done.json["risk_level"] == "B"
            && done.json["verification"] == json!(["device_signature", "biometric"]),
        "succeeded at level B with device signature and biometric",
        done.body.clone(),
    )
}

pub(super) async fn pin_lockout(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "II").await?;
    set_pin(c, &ck).await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, "1000.00").await?, 201, None)?;
    let kp = device()?;
    let token = device_token(c, &ck, &kp).await?;
    let r = c.charge(&mk, &token, "10.00").await?;
    let id = field(&r, "id")?.to_owned();
    let path = format!("/v1/payments/{id}/confirm");
    for _ in 0..5 {
        let w = c.post_money(&path, &ck, json!({ "pin": "000001" })).await?;
        expect_refused(&w, &["pin_incorrect", "pin_locked"])?;
    }
    let r = c.post_money(&path, &ck, json!({ "pin": "493817" })).await?;
    expect_refused(&r, &["pin_locked"])?;
    check(
        c.balance(&ck).await? == "1000.00",
        "nothing more charged",
        "another balance",
    )
}
