//! Small merchants, password-free counts, the transaction cap, velocity, risk prompts, retention and flagged payments.

use super::*;

pub(super) async fn small_credit_day(c: &mut Ctx) -> Outcome {
    let day = rule_value(c, "BCP-SMALL-MERCHANT-CREDIT-DAY").await?;
    let month = rule_value(c, "BCP-SMALL-MERCHANT-CREDIT-MONTH").await?;
    check(
        day > 0 && day <= 100_000,
        "a day cap of at most 1,000.00 CNY",
        cny(day),
    )?;
    if month < day {
        return Err(Stop::Skip(format!(
            "the target's month cap ({}) is below its day cap ({}), so the day cap cannot be reached; QGC-SMALL-MERCHANT-CREDIT-MONTH observes the month cap",
            cny(month),
            cny(day)
        )));
    }
    let owner = c.idem();
    let (_, m1) = c.small_merchant(&owner).await?;
    let (_, m2) = c.small_merchant(&owner).await?;
    let (_, a) = c.customer("0", "II").await?;
    let (_, b) = c.customer("0", "II").await?;
    let a_credit = link_card(c, &a, "4242424242424242").await?;
    let b_credit = link_card(c, &b, "4242424242424242").await?;
    let b_debit = link_card(c, &b, "6200000000000005").await?;
    let first = day * 3 / 5;
    let second = day - first - 1;
    for (mk, ck, amount, card) in [
        (&m1, &a, first, &a_credit),
        (&m2, &b, second, &b_credit),
        // Exactly at the cap.
        (&m1, &b, 1, &b_credit),
    ] {
        expect(
            &pay_order_from(c, mk, ck, &cny(amount), card).await?,
            201,
            None,
        )?;
    }
    let r = pay_order_from(c, &m2, &b, "0.01", &b_credit).await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    cites(&r, "BCP-SMALL-MERCHANT-CREDIT-DAY")?;
    // A debit card is not credit: outside this cap.
    expect(
        &pay_order_from(c, &m1, &b, "1.00", &b_debit).await?,
        201,
        None,
    )
}

pub(super) async fn small_credit_month(c: &mut Ctx) -> Outcome {
    let day = rule_value(c, "BCP-SMALL-MERCHANT-CREDIT-DAY").await?;
    let month = rule_value(c, "BCP-SMALL-MERCHANT-CREDIT-MONTH").await?;
    check(
        month > 0 && month <= 1_000_000,
        "a month cap of at most 10,000.00 CNY",
        cny(month),
    )?;
    if month >= day {
        return Err(Stop::Skip(format!(
            "the stated month cap ({}) is within the rule; watching it refuse within one run needs a target whose month cap is below its day cap ({})",
            cny(month),
            cny(day)
        )));
    }
    let owner = c.idem();
    let (_, m1) = c.small_merchant(&owner).await?;
    let (_, m2) = c.small_merchant(&owner).await?;
    let (_, a) = c.customer("0", "II").await?;
    let card = link_card(c, &a, "4242424242424242").await?;
    expect(
        &pay_order_from(c, &m1, &a, &cny(month - 1), &card).await?,
        201,
        None,
    )?;
    expect(&pay_order_from(c, &m2, &a, "0.01", &card).await?, 201, None)?;
    let r = pay_order_from(c, &m2, &a, "0.01", &card).await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    cites(&r, "BCP-SMALL-MERCHANT-CREDIT-MONTH")
}

/// An optional limit's number, or SKIP when the target leaves it off.
pub(super) async fn optional_rule(c: &mut Ctx, id: &str) -> Result<i64, Stop> {
    stated(c, id).await?.ok_or_else(|| {
        Stop::Skip(format!(
            "{id} is an optional limit and the target leaves it off"
        ))
    })
}

pub(super) async fn password_free_count(c: &mut Ctx) -> Outcome {
    let n = optional_rule(c, "BCP-PASSWORD-FREE-COUNT").await?;
    if n > 50 {
        return Err(Stop::Skip(format!(
            "the target allows {n} password-free payments a day; this case observes at most 50"
        )));
    }
    if let Some(v) = stated(c, "QG-VELOCITY-CUSTOMER").await?
        && v < n + 2
    {
        return Err(Stop::Skip(format!(
            "the target's velocity limit ({v} a minute) stops a payer before its password-free count ({n}) can be watched"
        )));
    }
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    for _ in 0..n {
        let (code, _) = c.payment_code(&ck).await?;
        expect(&c.charge(&mk, &code, "0.01").await?, 201, None)?;
    }
    let (code, _) = c.payment_code(&ck).await?;
    let r = c.charge(&mk, &code, "0.01").await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    cites(&r, "BCP-PASSWORD-FREE-COUNT")?;
    // With a PIN and a device the payer can confirm with the PIN.
    set_pin(c, &ck).await?;
    let kp = device()?;
    let token = device_token(c, &ck, &kp).await?;
    let r = c.charge(&mk, &token, "0.01").await?;
    expect(&r, 201, None)?;
    check(
        r.json["status"] == "requires_action"
            && r.json["next_action"]["accepts"]
                .as_array()
                .is_some_and(|a| {
                    !a.is_empty()
                        && a.iter()
                            .all(|s| s.as_array().is_some_and(|s| s.contains(&json!("pin"))))
                }),
        "requires_action, every accepted set with the PIN",
        r.body.clone(),
    )?;
    let path = format!("/v1/payments/{}/confirm", field(&r, "id")?);
    let done = c.post_money(&path, &ck, json!({ "pin": "493817" })).await?;
    expect(&done, 200, None)?;
    check(
        done.json["status"] == "succeeded",
        "confirmed with the PIN",
        done.body.clone(),
    )
}

pub(super) async fn txn_cap(c: &mut Ctx) -> Outcome {
    let cap = optional_rule(c, "BCP-TXN-CAP").await?;
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("10.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    let r = c.charge(&mk, &code, &cny(cap + 1)).await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    cites(&r, "BCP-TXN-CAP")?;
    check(
        c.balance(&ck).await? == "10.00",
        "nothing charged",
        "another balance",
    )?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, &cny(cap.min(1000))).await?, 201, None)
}

pub(super) async fn velocity(c: &mut Ctx) -> Outcome {
    let v = optional_rule(c, "QG-VELOCITY-CUSTOMER").await?;
    if v > 20 {
        return Err(Stop::Skip(format!(
            "the target allows {v} payments a minute; this case observes at most 20"
        )));
    }
    let (_, mk) = c.merchant().await?;
    // A minute may turn while paying: then try once more with a new payer.
    for _ in 0..2 {
        let (_, ck) = c.customer("100.00", "II").await?;
        // A PIN, so a password-free count (if any) asks for it instead of declining.
        set_pin(c, &ck).await?;
        let kp = device()?;
        let d = enroll(c, &ck, &kp).await?;
        let mut refused = None;
        for _ in 0..=v {
            let r = pay_stepped_up(c, &mk, &ck, &kp, &d, "0.01").await?;
            if r.status >= 300 {
                refused = Some(r);
                break;
            }
        }
        if let Some(r) = refused {
            expect(&r, 402, Some("limit_exceeded"))?;
            return cites(&r, "QG-VELOCITY-CUSTOMER");
        }
    }
    Err(fail(
        format!("a refusal within {} payments in a minute", v + 1),
        "every payment accepted, twice",
    ))
}

pub(super) async fn mpm_risk_prompt(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    let r = c
        .call("POST", "/v1/static-codes", Some(&mk), None, None)
        .await?;
    expect(&r, 201, None)?;
    check(
        r.json["risk_prompt"].as_str().is_some_and(|p| p.len() > 20),
        "a risk prompt with the generated static code",
        r.body.clone(),
    )?;
    let payload = field(&r, "payload")?.to_owned();
    let v = c
        .call(
            "POST",
            "/v1/codes/verify",
            None,
            Some(json!({ "payload": payload })),
            None,
        )
        .await?;
    expect(&v, 200, None)?;
    let name = field(&v, "merchant_name")?.to_owned();
    check(
        v.json["risk_prompt"]
            .as_str()
            .is_some_and(|p| p.contains(&name)),
        format!("a scanning risk prompt naming {name}"),
        v.body.clone(),
    )?;
    let p = c
        .post_money(
            "/v1/scans",
            &ck,
            json!({ "payload": payload, "amount": "1.00" }),
        )
        .await?;
    expect(&p, 201, None)?;
    check(
        p.json["risk_prompt"]
            .as_str()
            .is_some_and(|x| !x.is_empty()),
        "a risk prompt in the payer's answer",
        p.body.clone(),
    )
}

pub(super) async fn retention(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    let p = c.charge(&mk, &code, "10.00").await?;
    expect(&p, 201, None)?;
    let id = field(&p, "id")?.to_owned();
    let r = c
        .post_money(
            &format!("/v1/payments/{id}/refunds"),
            &mk,
            json!({ "amount": "1.00", "out_refund_no": "KEEP1" }),
        )
        .await?;
    expect(&r, 201, None)?;
    let admin = c.admin.clone();
    for (path, key) in [
        (format!("/v1/payments/{id}"), mk.clone()),
        (format!("/v1/payments/{id}"), admin.clone()),
        (format!("/v1/payments/{id}/refunds"), mk.clone()),
        ("/v1/audit/log".to_owned(), admin.clone()),
    ] {
        let d = c.call("DELETE", &path, Some(&key), None, None).await?;
        check(
            d.status == 404 || d.status == 405,
            format!("DELETE {path} refused (404 or 405)"),
            format!("HTTP {}", d.status),
        )?;
    }
    let after = c
        .call("GET", &format!("/v1/payments/{id}"), Some(&mk), None, None)
        .await?;
    expect(&after, 200, None)?;
    check(
        after.json["status"] == "succeeded" && after.json["amount_refunded"] == "1.00",
        "the payment and its refund read back unchanged",
        after.body.clone(),
    )
}

/// Whether the admin's view of a payment records `rule` with `decision`.
pub(super) async fn flagged(c: &mut Ctx, payment: &str, rule: &str, decision: &str) -> Outcome {
    let v = c
        .as_admin("GET", &format!("/v1/payments/{payment}"), None)
        .await?;
    expect(&v, 200, None)?;
    check(
        v.json["risk_checks"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["rule"] == rule && x["decision"] == decision)
        }),
        format!("risk_checks records {rule}: {decision}"),
        v.body.clone(),
    )
}

pub(super) async fn anomaly_amount(c: &mut Ctx) -> Outcome {
    let factor = rule_value(c, "QG-ANOMALY-AMOUNT").await?;
    let floor = rule_value(c, "BCP-LIMIT-D-STATIC").await?;
    let c_cap = rule_value(c, "BCP-LIMIT-C-DAILY").await?;
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "II").await?;
    for _ in 0..3 {
        let (code, _) = c.payment_code(&ck).await?;
        expect(&c.charge(&mk, &code, "1.00").await?, 201, None)?;
    }
    // Above the review floor and at least `factor` times the 1.00 average.
    let amount = (floor + 10_000).max(factor * 100);
    if amount + 300 > c_cap {
        return Err(Stop::Skip(format!(
            "a payment of {} would not fit the target's level-C cap",
            cny(amount)
        )));
    }
    let p = pay_order_from(c, &mk, &ck, &cny(amount), "wallet").await?;
    expect(&p, 201, None)?;
    check(
        p.json["status"] == "succeeded",
        "the payment succeeds (a flag never refuses)",
        p.body.clone(),
    )?;
    flagged(c, field(&p, "id")?, "QG-ANOMALY-AMOUNT", "flag_for_review").await
}

pub(super) async fn personal_code_payers(c: &mut Ctx) -> Outcome {
    let limit = rule_value(c, "QG-PERSONAL-CODE-PAYERS").await?;
    if limit > 10 {
        return Err(Stop::Skip(format!(
            "the target reviews at {limit} distinct payers a day; this case pays with at most 11"
        )));
    }
    let owner = c.idem();
    let (_, mk) = c.small_merchant(&owner).await?;
    let mut last = None;
    for _ in 0..=limit {
        let (_, ck) = c.customer("10.00", "II").await?;
        let p = pay_order_from(c, &mk, &ck, "1.00", "wallet").await?;
        expect(&p, 201, None)?;
        last = Some(field(&p, "id")?.to_owned());
    }
    let last = last.ok_or_else(|| fail("a payment", "none made"))?;
    flagged(c, &last, "QG-PERSONAL-CODE-PAYERS", "flag_for_review").await
}
