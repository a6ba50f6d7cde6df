//! Refunds (cap, once per number, to the original source), races on a payment, credential changes, webhook targets, order expiry and idempotency.

use super::*;

pub(super) async fn refund_cap(c: &mut Ctx) -> Outcome {
    let (mk, _, _, p) = c.paid("100.00").await?;
    let id = field(&p, "id")?.to_owned();
    let path = format!("/v1/payments/{id}/refunds");
    expect(
        &c.post_money(
            &path,
            &mk,
            json!({ "amount": "100.01", "out_refund_no": "A" }),
        )
        .await?,
        402,
        Some("limit_exceeded"),
    )?;
    expect(
        &c.post_money(
            &path,
            &mk,
            json!({ "amount": "60.00", "out_refund_no": "B" }),
        )
        .await?,
        201,
        None,
    )?;
    expect(
        &c.post_money(
            &path,
            &mk,
            json!({ "amount": "40.01", "out_refund_no": "C" }),
        )
        .await?,
        402,
        Some("limit_exceeded"),
    )?;
    expect(
        &c.post_money(
            &path,
            &mk,
            json!({ "amount": "40.00", "out_refund_no": "D" }),
        )
        .await?,
        201,
        None,
    )?;
    // A declined payment cannot be refunded.
    let (_, ck2) = c.customer("1.00", "II").await?;
    let (code, _) = c.payment_code(&ck2).await?;
    let d = c.charge(&mk, &code, "50.00").await?;
    expect(&d, 402, Some("insufficient_funds"))?;
    let failed = d.json["error"]["payment_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = c
        .post_money(
            &format!("/v1/payments/{failed}/refunds"),
            &mk,
            json!({ "amount": "1.00", "out_refund_no": "E" }),
        )
        .await?;
    expect_refused(&r, &["payment_not_refundable", "not_found"])
}

pub(super) async fn refund_idempotent(c: &mut Ctx) -> Outcome {
    let (mk, ck, _, p) = c.paid("50.00").await?;
    let path = format!("/v1/payments/{}/refunds", field(&p, "id")?);
    let a = c
        .post_money(
            &path,
            &mk,
            json!({ "amount": "20.00", "out_refund_no": "R1" }),
        )
        .await?;
    expect(&a, 201, None)?;
    let b = c
        .post_money(
            &path,
            &mk,
            json!({ "amount": "20.00", "out_refund_no": "R1" }),
        )
        .await?;
    check(
        b.status < 300 && b.json["id"] == a.json["id"],
        "the same refund",
        b.body.clone(),
    )?;
    check(
        c.balance(&ck).await? == "870.00",
        "refunded once",
        "another balance",
    )
}

pub(super) async fn refund_original(c: &mut Ctx) -> Outcome {
    let (mk, ck, _, p) = c.paid("30.00").await?;
    let path = format!("/v1/payments/{}/refunds", field(&p, "id")?);
    expect(
        &c.post_money(
            &path,
            &mk,
            json!({ "amount": "30.00", "out_refund_no": "R" }),
        )
        .await?,
        201,
        None,
    )?;
    check(
        c.balance(&ck).await? == "900.00",
        "the wallet has its 30.00 back",
        "another balance",
    )
}

pub(super) async fn confirm_race(c: &mut Ctx) -> Outcome {
    let (mk, ck) = c_cap_used(c).await?;
    let kp = device()?;
    let d = enroll(c, &ck, &kp).await?;
    let r = c.charge(&mk, &signed_token(&kp, &d)?, "10.00").await?;
    expect(&r, 201, None)?;
    check(
        r.json["status"] == "requires_action",
        "status requires_action",
        r.body.clone(),
    )?;
    let path = format!("/v1/payments/{}/confirm", field(&r, "id")?);
    let pin = json!({ "pin": "493817" });
    let answers = c
        .post_together(
            &ck,
            vec![(path.clone(), Some(pin.clone())), (path, Some(pin))],
        )
        .await?;
    let mut ok = 0;
    for r in &answers {
        check(r.status < 500, "no server error", summary(r))?;
        if (200..300).contains(&r.status) {
            ok += 1;
        } else {
            check(r.status == 409, "the other one a 409", summary(r))?;
        }
    }
    check(
        ok == 1,
        "exactly one confirmation completes it",
        format!("{ok} did"),
    )?;
    let balance = c.balance(&ck).await?;
    check(
        balance == "990.00",
        "the payer charged 10.00 once (990.00 left)",
        balance,
    )?;
    ledger_balanced(c).await
}

pub(super) async fn pin_change(c: &mut Ctx) -> Outcome {
    let (_, ck) = c.customer("1.00", "II").await?;
    set_pin(c, &ck).await?;
    let change = |current: Option<&str>| {
        let mut body = json!({ "pin": "271828" });
        if let Some(p) = current {
            body["current_pin"] = json!(p);
        }
        body
    };
    let r = c
        .call("POST", "/v1/me/pin", Some(&ck), Some(change(None)), None)
        .await?;
    expect(&r, 409, Some("pin_already_set"))?;
    let r = c
        .call(
            "POST",
            "/v1/me/pin",
            Some(&ck),
            Some(change(Some("111119"))),
            None,
        )
        .await?;
    expect(&r, 422, Some("pin_incorrect"))?;
    let r = c
        .call(
            "POST",
            "/v1/me/pin",
            Some(&ck),
            Some(change(Some("493817"))),
            None,
        )
        .await?;
    expect(&r, 200, None)?;
    // The old PIN no longer proves anything.
    let r = c
        .call(
            "POST",
            "/v1/me/pin",
            Some(&ck),
            Some(json!({ "pin": "314159", "current_pin": "493817" })),
            None,
        )
        .await?;
    expect(&r, 422, Some("pin_incorrect"))
}

pub(super) async fn device_revoke(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    let kp = device()?;
    let d = enroll(c, &ck, &kp).await?;
    // Made offline, before the revocation.
    let token = signed_token(&kp, &d)?;
    let r = c
        .call(
            "POST",
            &format!("/v1/devices/{}/revoke", d.id),
            Some(&ck),
            None,
            None,
        )
        .await?;
    expect(&r, 200, None)?;
    check(
        r.json["status"] == "revoked",
        "status revoked",
        r.body.clone(),
    )?;
    let r = c.charge(&mk, &token, "1.00").await?;
    expect(&r, 422, Some("device_revoked"))?;
    let balance = c.balance(&ck).await?;
    check(balance == "100.00", "nothing moved (100.00)", balance)
}

pub(super) async fn webhook_targets(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let register = async |c: &mut Ctx, url: &str| {
        c.call(
            "POST",
            "/v1/webhook-endpoints",
            Some(&mk),
            Some(json!({ "url": url })),
            None,
        )
        .await
    };
    // Refused by every deployment.
    for url in [
        "http://127.0.0.1@example.com/hook",
        "https://user:pw@example.com/hook",
        "http://127.0.0.1.example.com/hook",
        "ftp://example.com/hook",
    ] {
        let r = register(c, url).await?;
        expect(&r, 400, Some("invalid_url")).map_err(|e| match e {
            Stop::Fail { expected, observed } => Stop::Fail {
                expected: format!("{url}: {expected}"),
                observed,
            },
            other => other,
        })?;
    }
    // Internal https targets: refused unless the deployment states (in
    // GET /v1/rules) that it opted in.
    let rules = c.call("GET", "/v1/rules", None, None, None).await?;
    expect(&rules, 200, None)?;
    if rules.json["webhooks"]["internal_targets"] == true {
        return Err(Stop::Skip(
            "the target states it accepts internal webhook targets (allow_internal_webhooks)"
                .into(),
        ));
    }
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0x7f000001/hook",
    ] {
        let r = register(c, url).await?;
        if r.status == 201 {
            // Do not leave it pointing there.
            if let Ok(id) = field(&r, "id") {
                let id = id.to_owned();
                let _ = c
                    .call(
                        "DELETE",
                        &format!("/v1/webhook-endpoints/{id}"),
                        Some(&mk),
                        None,
                        None,
                    )
                    .await;
            }
        }
        expect(&r, 400, Some("invalid_url")).map_err(|e| match e {
            Stop::Fail { expected, observed } => Stop::Fail {
                expected: format!("{url}: {expected}"),
                observed,
            },
            other => other,
        })?;
    }
    Ok(())
}

pub(super) async fn cancel_refund_race(c: &mut Ctx) -> Outcome {
    let (mk, ck, _, first) = c.paid("20.00").await?;
    // The merchant holds other money, so only the guards can stop a
    // second payback, not the merchant's balance.
    let (code, _) = c.payment_code(&ck).await?;
    let r = c.charge(&mk, &code, "30.00").await?;
    expect(&r, 201, None)?;
    let mut payment = first;
    for trial in 0..5 {
        if trial > 0 {
            let (code, _) = c.payment_code(&ck).await?;
            payment = c.charge(&mk, &code, "20.00").await?;
            expect(&payment, 201, None)?;
        }
        let id = field(&payment, "id")?;
        let refund = json!({ "amount": "20.00", "out_refund_no": format!("R{trial}") });
        let answers = c
            .post_together(
                &mk,
                vec![
                    (format!("/v1/payments/{id}/cancel"), None),
                    (format!("/v1/payments/{id}/refunds"), Some(refund)),
                ],
            )
            .await?;
        let mut ok = 0;
        for r in &answers {
            check(r.status < 500, "no server error", summary(r))?;
            ok += usize::from((200..300).contains(&r.status));
        }
        check(
            ok == 1,
            "exactly one of cancel and refund succeeds",
            format!("{ok} succeeded (trial {trial})"),
        )?;
    }
    // 900.00 - 30.00, every 20.00 paid back exactly once.
    let balance = c.balance(&ck).await?;
    check(balance == "870.00", "the payer's balance 870.00", balance)?;
    let r = c.as_admin("GET", "/v1/ledger/check", None).await?;
    expect(&r, 200, None)?;
    check(
        r.json["balanced"] == true,
        "balanced: true (the books agree with the payments)",
        r.body.clone(),
    )
}

pub(super) async fn refund_count(c: &mut Ctx) -> Outcome {
    let (mk, _, _, p) = c.paid("10.00").await?;
    let path = format!("/v1/payments/{}/refunds", field(&p, "id")?);
    for i in 0..50 {
        let r = c
            .post_money(
                &path,
                &mk,
                json!({ "amount": "0.01", "out_refund_no": format!("N{i}") }),
            )
            .await?;
        expect(&r, 201, None)?;
    }
    let r = c
        .post_money(
            &path,
            &mk,
            json!({ "amount": "0.01", "out_refund_no": "N50" }),
        )
        .await?;
    expect(&r, 402, Some("limit_exceeded"))
}

pub(super) async fn order_ttl(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let r = c
        .call(
            "POST",
            "/v1/orders",
            Some(&mk),
            Some(json!({ "amount": "1.00", "expires_in": 7201 })),
            None,
        )
        .await?;
    expect_refused(&r, &[])
}

pub(super) async fn idem_replay(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    let key = c.idem();
    let body = json!({ "auth_code": code, "amount": "10.00" });
    let a = c
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(body.clone()),
            Some(key.clone()),
        )
        .await?;
    expect(&a, 201, None)?;
    let b = c
        .call("POST", "/v1/payments", Some(&mk), Some(body), Some(key))
        .await?;
    check(
        b.status == a.status && b.body == a.body,
        "the stored answer, byte for byte",
        b.body.clone(),
    )?;
    check(
        b.header("idempotent-replayed") == Some("true"),
        "Idempotent-Replayed: true",
        format!("{:?}", b.header("idempotent-replayed")),
    )?;
    check(
        c.balance(&ck).await? == "90.00",
        "charged once",
        "another balance",
    )
}

pub(super) async fn idem_reuse(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("100.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    let key = c.idem();
    expect(
        &c.call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": code, "amount": "10.00" })),
            Some(key.clone()),
        )
        .await?,
        201,
        None,
    )?;
    let r = c
        .call(
            "POST",
            "/v1/payments",
            Some(&mk),
            Some(json!({ "auth_code": code, "amount": "20.00" })),
            Some(key),
        )
        .await?;
    expect(&r, 409, Some("idempotency_key_reused"))
}

/// A merchant's fee of each payment, the part each refund gives back, and
/// the balance: all read through the API (a merchant with its own rate, so
/// the case does not depend on the deployment's defaults).
pub(super) async fn fees(c: &mut Ctx) -> Outcome {
    let (mch, mk) = c.merchant_with(json!({ "fee_rate_bps": 60 })).await?;
    let (_, ck) = c.customer("900.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    let pay = c.charge(&mk, &code, "100.00").await?;
    expect(&pay, 201, None)?;
    // 0.6% of 100.00, to the fen.
    check(
        field(&pay, "fee")? == "0.60",
        "fee 0.60",
        field(&pay, "fee")?,
    )?;
    let id = field(&pay, "id")?.to_owned();
    let path = format!("/v1/payments/{id}/refunds");
    // 33.33 back: the fee kept goes from 0.60 to 0.40 (0.6% of 66.67 is
    // 0.40002), so 0.20 comes back; then the rest brings back the rest.
    let r1 = c
        .post_money(
            &path,
            &mk,
            json!({ "amount": "33.33", "out_refund_no": "F1" }),
        )
        .await?;
    expect(&r1, 201, None)?;
    let back = field(&r1, "fee_returned")?;
    check(back == "0.20", "fee_returned 0.20", back)?;
    let pending = |r: &crate::client::Resp| {
        r.json["balances"][0]["pending"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let b = c.call("GET", "/v1/balance", Some(&mk), None, None).await?;
    expect(&b, 200, None)?;
    check(
        pending(&b) == "66.27",
        "pending 66.27 (99.40 less 33.13)",
        pending(&b),
    )?;
    let r2 = c
        .post_money(
            &path,
            &mk,
            json!({ "amount": "66.67", "out_refund_no": "F2" }),
        )
        .await?;
    expect(&r2, 201, None)?;
    let back = field(&r2, "fee_returned")?;
    check(back == "0.40", "fee_returned 0.40", back)?;
    let admin = c.admin.clone();
    let b = c
        .call(
            "GET",
            &format!("/v1/balance?merchant_id={mch}"),
            Some(&admin),
            None,
            None,
        )
        .await?;
    expect(&b, 200, None)?;
    check(
        pending(&b) == "0.00",
        "pending 0.00 after a full refund",
        pending(&b),
    )
}

/// A regular merchant onboarded without a rate of its own pays the
/// stated default (`GET /v1/rules`).
pub(super) async fn fee_default_regular(c: &mut Ctx) -> Outcome {
    fee_default(c, "QG-FEE-REGULAR", json!({})).await
}

/// So does a small personal merchant, at its own default.
pub(super) async fn fee_default_small(c: &mut Ctx) -> Outcome {
    let owner = format!("fee-{}", c.tag);
    let extra = json!({ "category": "small_personal", "owner_ref": owner });
    fee_default(c, "QG-FEE-SMALL-PERSONAL", extra).await
}

async fn fee_default(c: &mut Ctx, rule: &str, extra: serde_json::Value) -> Outcome {
    let stated = rule_value(c, rule).await?;
    let (mch, _) = c.merchant_with(extra).await?;
    let admin = c.admin.clone();
    let m = c
        .call(
            "GET",
            &format!("/v1/merchants/{mch}"),
            Some(&admin),
            None,
            None,
        )
        .await?;
    expect(&m, 200, None)?;
    let rate = m.json["fees"]["rate_bps"].as_i64().unwrap_or(-1);
    check(
        rate == stated,
        format!("{rule}: rate_bps {stated}"),
        rate.to_string(),
    )
}

/// A day's statements, read as a merchant's system would: the trade bill's
/// totals equal the payment and refund made through the API, the
/// fund-flow bill closes at the balance, the digest header is the body's,
/// and a merchant number that starts a formula is neutralised.
pub(super) async fn statements(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant_with(json!({ "fee_rate_bps": 60 })).await?;
    let (_, ck) = c.customer("900.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    let pay = c
        .post_money(
            "/v1/payments",
            &mk,
            json!({ "auth_code": code, "amount": "100.00", "out_trade_no": "=HYPERLINK(1)" }),
        )
        .await?;
    expect(&pay, 201, None)?;
    let id = field(&pay, "id")?.to_owned();
    let r = c
        .post_money(
            &format!("/v1/payments/{id}/refunds"),
            &mk,
            json!({ "amount": "20.00", "out_refund_no": "S1" }),
        )
        .await?;
    expect(&r, 201, None)?;
    let last = qrgate_core::Timestamp::parse_rfc3339(field(&r, "created_at")?)
        .ok_or_else(|| fail("an RFC 3339 created_at", summary(&r)))?;
    let offset = i32::try_from(rule_value(c, "BCP-LIMIT-SCOPE").await?)
        .map_err(|_| fail("a zone offset in minutes", "out of range"))?;
    let day = qrgate_core::day::BusinessDay::of(last, offset);
    // A provisional bill covers what was recorded until a few seconds
    // before it was asked for: ask until it covers the refund (30 s at most).
    let path = format!("/v1/statements/{day}/trades.csv");
    let mut trades = c.call("GET", &path, Some(&mk), None, None).await?;
    for _ in 0..30 {
        expect(&trades, 200, None)?;
        let as_of = trades
            .header("qrgate-statement-as-of")
            .and_then(qrgate_core::Timestamp::parse_rfc3339);
        if as_of.is_some_and(|t| t > last) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        trades = c.call("GET", &path, Some(&mk), None, None).await?;
    }
    check_digest(&trades)?;
    let totals = trades.body.lines().last().unwrap_or_default().to_owned();
    // 100.00 paid, 20.00 back; the fee 0.60 less the 0.12 given back.
    check(
        totals.starts_with("2,100.00,20.00,0.48,79.52,"),
        "totals 2,100.00,20.00,0.48,79.52",
        totals.clone(),
    )?;
    check(
        trades.body.contains(",'=HYPERLINK(1),"),
        "the number neutralised as '=HYPERLINK(1)",
        trades.body.clone(),
    )?;
    let funds = c
        .call(
            "GET",
            &format!("/v1/statements/{day}/funds.csv"),
            Some(&mk),
            None,
            None,
        )
        .await?;
    expect(&funds, 200, None)?;
    check_digest(&funds)?;
    let b = c.call("GET", "/v1/balance", Some(&mk), None, None).await?;
    expect(&b, 200, None)?;
    let pending = b.json["balances"][0]["pending"]
        .as_str()
        .unwrap_or_default();
    let closing = funds
        .body
        .lines()
        .find(|l| l.starts_with("pending,"))
        .and_then(|l| l.split(',').nth(4))
        .unwrap_or_default();
    check(
        pending == "79.52" && closing == pending,
        "balance 79.52 and the fund-flow closing balance equal to it",
        format!("balance {pending}, closing {closing}"),
    )
}

/// The `Repr-Digest` header is the SHA-256 of the body.
fn check_digest(r: &crate::client::Resp) -> Outcome {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, r.body.as_bytes());
    let want = format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    );
    let got = r.header("repr-digest").unwrap_or_default();
    check(got == want, want.clone(), got.to_owned())
}

/// QG-RECONCILIATION: card payments, a refund and a cancel made through
/// the API appear in the day's reconciliation of the processor's file
/// against the ledger, none of them in a finding.
pub(super) async fn reconciliation(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant_with(json!({})).await?;
    let (_, ck) = c.customer("1.00", "II").await?;
    let card = super::levels::link_card(c, &ck, "4242424242424242").await?;
    let mut paid = Vec::new();
    for amount in ["31.00", "12.00"] {
        let p = super::levels::pay_order_from(c, &mk, &ck, amount, &card).await?;
        expect(&p, 201, None)?;
        paid.push(field(&p, "id")?.to_owned());
    }
    let r = c
        .post_money(
            &format!("/v1/payments/{}/refunds", paid[0]),
            &mk,
            json!({ "amount": "1.00", "out_refund_no": "RC1" }),
        )
        .await?;
    expect(&r, 201, None)?;
    let cancel = c
        .post_money(&format!("/v1/payments/{}/cancel", paid[1]), &mk, json!({}))
        .await?;
    expect(&cancel, 200, None)?;
    let at = qrgate_core::Timestamp::parse_rfc3339(field(&r, "created_at")?)
        .ok_or_else(|| fail("an RFC 3339 created_at", summary(&r)))?;
    let offset = i32::try_from(rule_value(c, "BCP-LIMIT-SCOPE").await?)
        .map_err(|_| fail("a zone offset in minutes", "out of range"))?;
    let day = qrgate_core::day::BusinessDay::of(at, offset);
    let report = c
        .as_admin("GET", &format!("/v1/reconciliation/{day}"), None)
        .await?;
    expect(&report, 200, None)?;
    let findings: Vec<String> = [
        "missing_in_processor",
        "missing_in_ledger",
        "amount_mismatches",
        "status_mismatches",
    ]
    .iter()
    .flat_map(|k| {
        report.json[*k]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|f| f["reference"].as_str().unwrap_or_default().to_owned())
    })
    .collect();
    let ours: Vec<&String> = findings
        .iter()
        .filter(|f| paid.iter().any(|p| f.starts_with(p.as_str())))
        .collect();
    check(
        ours.is_empty(),
        "no finding names this case's card payments, refund or cancel",
        format!("{ours:?}"),
    )?;
    let matched = report.json["matched"].as_u64().unwrap_or_default();
    check(
        matched >= 4,
        "at least the 2 captures, the refund and the cancel matched",
        format!("matched {matched}"),
    )
}
