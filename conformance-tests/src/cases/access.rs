//! Authentication, roles, tenancy, input validation, and the auditor's checks of the books and the chain.

use super::*;

pub(super) async fn auth_no_key(c: &mut Ctx) -> Outcome {
    let r = c.call("GET", "/v1/payments", None, None, None).await?;
    expect(&r, 401, None)?;
    let r = c
        .call(
            "GET",
            "/v1/payments",
            Some("qgk_merchant_not-a-real-key"),
            None,
            None,
        )
        .await?;
    expect(&r, 401, None)
}

pub(super) async fn auth_wrong_role(c: &mut Ctx) -> Outcome {
    let (_, ck) = c.customer("0", "II").await?;
    let r = c
        .call("POST", "/v1/static-codes", Some(&ck), None, None)
        .await?;
    expect(&r, 403, None)?;
    let (_, mk) = c.merchant().await?;
    let r = c
        .call(
            "POST",
            "/v1/merchants",
            Some(&mk),
            Some(json!({ "name": "X", "city": "Y", "mcc": "5812" })),
            None,
        )
        .await?;
    expect(&r, 403, None)
}

pub(super) async fn auth_revoked(c: &mut Ctx) -> Outcome {
    let (mid, _) = c.merchant().await?;
    let admin = c.admin.clone();
    let k = c
        .call(
            "POST",
            "/v1/api-keys",
            Some(&admin),
            Some(json!({ "role": "merchant", "subject_id": mid })),
            None,
        )
        .await?;
    expect(&k, 201, None)?;
    let (kid, secret) = (field(&k, "id")?.to_owned(), field(&k, "secret")?.to_owned());
    expect(
        &c.call("GET", "/v1/payments", Some(&secret), None, None)
            .await?,
        200,
        None,
    )?;
    expect(
        &c.call(
            "POST",
            &format!("/v1/api-keys/{kid}/revoke"),
            Some(&admin),
            None,
            None,
        )
        .await?,
        200,
        None,
    )?;
    expect(
        &c.call("GET", "/v1/payments", Some(&secret), None, None)
            .await?,
        401,
        None,
    )
}

pub(super) async fn tenancy(c: &mut Ctx) -> Outcome {
    let (_, _, _, p) = c.paid("5.00").await?;
    let id = field(&p, "id")?.to_owned();
    let (_, other) = c.merchant().await?;
    expect(
        &c.call(
            "GET",
            &format!("/v1/payments/{id}"),
            Some(&other),
            None,
            None,
        )
        .await?,
        404,
        None,
    )?;
    let r = c
        .call(
            "POST",
            &format!("/v1/payments/{id}/refunds"),
            Some(&other),
            Some(json!({ "amount": "1.00", "out_refund_no": "X" })),
            Some(c.idem()),
        )
        .await?;
    expect(&r, 404, None)?;
    let list = c
        .call("GET", "/v1/payments", Some(&other), None, None)
        .await?;
    check(
        list.json["data"].as_array().is_some_and(|a| a.is_empty()),
        "an empty list",
        list.body.clone(),
    )
}

pub(super) async fn input_amount(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    for amount in [
        json!(12.30),
        json!("12.345"),
        json!("-1.00"),
        json!("0"),
        json!("1e3"),
        json!(" 1.00"),
    ] {
        let r = c
            .post_money(
                "/v1/payments",
                &mk,
                json!({ "auth_code": code, "amount": amount }),
            )
            .await?;
        expect(&r, 400, None)?;
    }
    check(
        c.balance(&ck).await? == "100.00",
        "nothing charged",
        "money moved",
    )
}

pub(super) async fn input_currency(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    for cur in ["XYZ", "USD"] {
        let r = c
            .post_money(
                "/v1/payments",
                &mk,
                json!({ "auth_code": code, "amount": "1.00", "currency": cur }),
            )
            .await?;
        expect(&r, 400, None)?;
    }
    Ok(())
}

pub(super) async fn input_body(c: &mut Ctx) -> Outcome {
    let admin = c.admin.clone();
    let big = json!({ "name": "x".repeat(200_000), "city": "C", "mcc": "5812" }).to_string();
    // A server may answer early and close the connection while the client is
    // still sending: that refuses the body too, if the server is still up.
    let big_req = Req {
        method: "POST",
        path: "/v1/merchants".into(),
        key: Some(&admin),
        body: Some(big.into_bytes()),
        content_type: None,
        idempotency_key: None,
    };
    match c.http.send_alone(big_req).await {
        Ok((r, ex)) => {
            c.exchanges.push(ex);
            check(
                r.status == 400 || r.status == 413,
                "400 or 413 for a 200 kB body",
                r.status.to_string(),
            )?;
        }
        Err(e) => {
            let health = c.call("GET", "/healthz", None, None, None).await?;
            check(
                health.status == 200,
                "the target still healthy after closing on an oversized body",
                format!("{e}; then /healthz {}", health.status),
            )?;
        }
    }
    let r = c
        .call(
            "POST",
            "/v1/merchants",
            Some(&admin),
            Some(json!({ "name": "A", "city": "B", "mcc": "5812", "surprise": true })),
            None,
        )
        .await?;
    expect(&r, 400, None)?;
    let r = c
        .send(Req {
            method: "POST",
            path: "/v1/merchants".into(),
            key: Some(&admin),
            body: Some(b"name=A".to_vec()),
            content_type: Some("application/x-www-form-urlencoded"),
            idempotency_key: None,
        })
        .await?;
    check(
        r.status == 400 || r.status == 415,
        "400 or 415 for a form body",
        r.status.to_string(),
    )
}

pub(super) async fn ledger_balanced(c: &mut Ctx) -> Outcome {
    let r = c.as_admin("GET", "/v1/ledger/check", None).await?;
    expect(&r, 200, None)?;
    check(r.json["balanced"] == true, "balanced: true", r.body.clone())?;
    // The books agree with the payments, not only with themselves.
    check(
        r.json["check"]["disagreeing_payments"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "check.disagreeing_payments present and empty",
        r.body.clone(),
    )
}

pub(super) async fn audit_chain(c: &mut Ctx) -> Outcome {
    let r = c.as_admin("GET", "/v1/audit/verify", None).await?;
    expect(&r, 200, None)?;
    check(
        r.json.get("Intact").is_some(),
        "the chain intact",
        r.body.clone(),
    )
}
