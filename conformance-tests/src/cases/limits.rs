//! Daily caps by level, separate and nested caps, their scope, and the rate limits.

use super::*;

pub(super) async fn limit_c(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "II").await?;
    for (amount, ok) in [("999.99", true), ("0.01", true), ("0.01", false)] {
        let (code, _) = c.payment_code(&ck).await?;
        let r = c.charge(&mk, &code, amount).await?;
        if ok {
            expect(&r, 201, None)?;
        } else {
            expect(&r, 402, Some("limit_exceeded"))?;
            check(
                r.rule() == "BCP-LIMIT-C-DAILY",
                "rule BCP-LIMIT-C-DAILY cited",
                r.rule().to_owned(),
            )?;
        }
    }
    check(
        c.balance(&ck).await? == "1000.00",
        "exactly 1,000.00 charged",
        "another balance",
    )
}

pub(super) async fn limit_c_race(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("3000.00", "II").await?;
    let mut codes = Vec::new();
    for _ in 0..16 {
        codes.push(c.payment_code(&ck).await?.0);
    }
    let charges = codes
        .into_iter()
        .map(|code| {
            let body = json!({ "auth_code": code, "amount": "100.00" });
            ("/v1/payments".to_owned(), Some(body))
        })
        .collect();
    let answers = c.post_together(&mk, charges).await?;
    let ok = answers
        .iter()
        .map(|r| i64::from(r.status == 201))
        .sum::<i64>();
    check(
        ok <= 10,
        "at most 10 of 16 (the 1,000.00 cap)",
        format!("{ok} succeeded"),
    )?;
    let left = money(&c.balance(&ck).await?);
    check(
        left == 300_000 - ok * 10_000,
        "the balance matches the successes",
        format!("{left} fen left after {ok} successes"),
    )
}

pub(super) async fn limit_d(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "II").await?;
    let payload = static_code(c, &mk).await?;
    for (amount, ok) in [("499.99", true), ("0.01", true), ("0.01", false)] {
        let r = c
            .post_money(
                "/v1/scans",
                &ck,
                json!({ "payload": payload, "amount": amount }),
            )
            .await?;
        if ok {
            expect(&r, 201, None)?;
        } else {
            expect(&r, 402, Some("limit_exceeded"))?;
            check(
                r.rule() == "BCP-LIMIT-D-STATIC",
                "rule BCP-LIMIT-D-STATIC cited",
                r.rule().to_owned(),
            )?;
        }
    }
    Ok(())
}

/// One request that draws on a rate limit.
pub(super) enum Probe<'a> {
    /// A consumer key asks for a payment code.
    Issue(&'a str),
    /// A merchant key charges a well-formed numeric code nobody issued.
    Unknown(&'a str),
    /// A consumer changes its PIN giving a wrong current one.
    Pin(&'a str),
}

pub(super) async fn probe(c: &mut Ctx, p: &Probe<'_>) -> Result<crate::client::Resp, Stop> {
    match p {
        Probe::Issue(ck) => {
            c.call("POST", "/v1/payment-codes", Some(ck), None, None)
                .await
        }
        Probe::Unknown(mk) => {
            let code = qrgate_codes::numeric::generate(&ring::rand::SystemRandom::new())
                .map_err(|e| fail("a numeric code", e.to_string()))?;
            let r = c.charge(mk, &code, "0.01").await?;
            if r.status != 429 {
                expect(&r, 422, Some("payment_code_unknown"))?;
            }
            Ok(r)
        }
        Probe::Pin(ck) => {
            c.call(
                "POST",
                "/v1/me/pin",
                Some(ck),
                Some(json!({ "pin": "271828", "current_pin": "111119" })),
                None,
            )
            .await
        }
    }
}

/// Send the probe until the target answers 429, at most `2 n + 1` times
/// (a one-minute window may turn over once on the way): at least `n` are
/// let through first, and the refusal carries Retry-After and `rule`.
pub(super) async fn until_rate_limited(c: &mut Ctx, n: i64, rule: &str, p: Probe<'_>) -> Outcome {
    for i in 0..=(2 * n) {
        let r = probe(c, &p).await?;
        if r.status != 429 {
            continue;
        }
        check(
            i >= n,
            format!("at least {n} let through before the limit"),
            format!("refused after {i}"),
        )?;
        expect(&r, 429, Some("rate_limited"))?;
        cites(&r, rule)?;
        let retry = r.header("retry-after").and_then(|v| v.parse::<u64>().ok());
        return check(
            retry.is_some_and(|s| (1..=60).contains(&s)),
            "a Retry-After of 1 to 60 seconds",
            format!("{retry:?}"),
        );
    }
    Err(fail(
        format!("429 within {} attempts", 2 * n + 1),
        "never refused",
    ))
}

/// A rate limit's number, or SKIP when it is too high to watch here.
pub(super) async fn rate_rule(c: &mut Ctx, id: &str) -> Result<i64, Stop> {
    let n = rule_value(c, id).await?;
    if n > 200 {
        return Err(Stop::Skip(format!(
            "the target allows {n} a minute; this case observes at most 200"
        )));
    }
    Ok(n)
}

pub(super) async fn rate_code_issue(c: &mut Ctx) -> Outcome {
    let n = rate_rule(c, "QG-RATE-CODE-ISSUE").await?;
    let (_, ck) = c.customer("1.00", "II").await?;
    until_rate_limited(c, n, "QG-RATE-CODE-ISSUE", Probe::Issue(&ck)).await
}

pub(super) async fn rate_unknown_code(c: &mut Ctx) -> Outcome {
    let n = rate_rule(c, "QG-RATE-UNKNOWN-CODE").await?;
    let (_, mk) = c.merchant().await?;
    until_rate_limited(c, n, "QG-RATE-UNKNOWN-CODE", Probe::Unknown(&mk)).await
}

pub(super) async fn rate_pin(c: &mut Ctx) -> Outcome {
    let n = rate_rule(c, "QG-RATE-PIN").await?;
    let (_, ck) = c.customer("1.00", "II").await?;
    set_pin(c, &ck).await?;
    until_rate_limited(c, n, "QG-RATE-PIN", Probe::Pin(&ck)).await
}

/// SKIP when the target nests its level caps: the case's sums assume each
/// level counts only its own payments (QGC-LIMIT-NESTED observes the other
/// reading).
pub(super) async fn separate_caps_only(c: &mut Ctx) -> Outcome {
    if stated(c, "BCP-LIMIT-NESTED").await? == Some(1) {
        return Err(Stop::Skip(
            "the target nests its level caps (BCP-LIMIT-NESTED = 1); this case's sums assume separate caps".into(),
        ));
    }
    Ok(())
}

/// The reading of the level caps the target states (BCP-LIMIT-NESTED);
/// SKIP when it is not `want`.
pub(super) async fn caps_reading(c: &mut Ctx, want: i64) -> Result<(i64, i64), Stop> {
    let nested = rule_value(c, "BCP-LIMIT-NESTED").await?;
    if nested != want {
        return Err(Stop::Skip(format!(
            "the target states BCP-LIMIT-NESTED = {nested}; this case observes the reading {want}"
        )));
    }
    Ok((
        rule_value(c, "BCP-LIMIT-C-DAILY").await?,
        rule_value(c, "BCP-LIMIT-D-STATIC").await?,
    ))
}

/// Pay `amount` to a static code from the consumer's wallet.
pub(super) async fn pay_static(
    c: &mut Ctx,
    ck: &str,
    payload: &str,
    amount: &str,
) -> Result<crate::client::Resp, Stop> {
    c.post_money(
        "/v1/scans",
        ck,
        json!({ "payload": payload, "amount": amount }),
    )
    .await
}

pub(super) async fn limits_separate(c: &mut Ctx) -> Outcome {
    let (cap_c, cap_d) = caps_reading(c, 0).await?;
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer(&cny(cap_c + cap_d + 100), "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, &cny(cap_c)).await?, 201, None)?;
    let payload = static_code(c, &mk).await?;
    expect(&pay_static(c, &ck, &payload, &cny(cap_d)).await?, 201, None)?;
    check(
        c.balance(&ck).await? == "1.00",
        "the C cap and the D cap both spent in full",
        "another balance",
    )
}

pub(super) async fn limits_nested(c: &mut Ctx) -> Outcome {
    let (cap_c, cap_d) = caps_reading(c, 1).await?;
    let (_, mk) = c.merchant().await?;
    let payload = static_code(c, &mk).await?;
    // C's cap used up at C: a static payment of one fen is refused, citing C.
    let (_, ck) = c.customer(&cny(cap_c + 100), "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, &cny(cap_c)).await?, 201, None)?;
    let r = pay_static(c, &ck, &payload, "0.01").await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    cites(&r, "BCP-LIMIT-C-DAILY")?;
    check(
        c.balance(&ck).await? == "1.00",
        "the refused payment moved nothing",
        "another balance",
    )?;
    // D's cap used at D: C has only what is left of its own.
    let (_, ck) = c.customer(&cny(cap_c + 100), "II").await?;
    expect(&pay_static(c, &ck, &payload, &cny(cap_d)).await?, 201, None)?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, &cny(cap_c - cap_d)).await?, 201, None)?;
    let (code, _) = c.payment_code(&ck).await?;
    let r = c.charge(&mk, &code, "0.01").await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    cites(&r, "BCP-LIMIT-C-DAILY")
}

pub(super) async fn limit_scope(c: &mut Ctx) -> Outcome {
    let (_, mk1) = c.merchant().await?;
    let (_, mk2) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk1, &code, "1000.00").await?, 201, None)?;
    let (code, _) = c.payment_code(&ck).await?;
    let r = c.charge(&mk2, &code, "0.01").await?;
    expect(&r, 402, Some("limit_exceeded"))
}
