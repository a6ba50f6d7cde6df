//! Complaints: a small disputed charge refunded in the same answer, a
//! larger one a ticket for the merchant, the payer's instant-refund cap, a
//! missed deadline escalating by itself, and who may see and file what.

use super::*;
use crate::client::Resp;

/// How long a deadline case waits at most (the target's deadline plus its
/// sweeper's pass).
const DEADLINE_WAIT_MS: i64 = 20_000;

/// The payer complains about payment `id` (a fresh Idempotency-Key).
async fn complain(c: &mut Ctx, ck: &str, id: &str, amount: Option<&str>) -> Result<Resp, Stop> {
    let mut body =
        json!({ "payment_id": id, "reason": "not_received", "description": "nothing came" });
    if let Some(a) = amount {
        body["amount"] = json!(a);
    }
    c.post_money("/v1/complaints", ck, body).await
}

pub(super) async fn complaint_instant(c: &mut Ctx) -> Outcome {
    let (mk, ck, _, p) = c.paid("19.99").await?;
    let id = field(&p, "id")?.to_owned();
    let k = complain(c, &ck, &id, None).await?;
    expect(&k, 201, None)?;
    check(
        k.json["status"] == "refunded_instantly" && k.json["refunded"] == "19.99",
        "a 19.99 complaint refunded in the same answer (refunded_instantly, 19.99)",
        summary(&k),
    )?;
    check(
        c.balance(&ck).await? == "900.00",
        "the wallet shows the money back (900.00)",
        "another balance",
    )?;
    // One refund, of the payment, the merchant can see.
    let r = c
        .call(
            "GET",
            &format!("/v1/payments/{id}/refunds"),
            Some(&mk),
            None,
            None,
        )
        .await?;
    expect(&r, 200, None)?;
    check(
        r.json["data"].as_array().map(Vec::len) == Some(1)
            && r.json["data"][0]["amount"] == "19.99",
        "one refund of 19.99 on the payment",
        summary(&r),
    )?;
    // Filing again: the same complaint, no second refund.
    let again = complain(c, &ck, &id, None).await?;
    expect(&again, 200, None)?;
    check(
        again.json["id"] == k.json["id"],
        "the same complaint again",
        summary(&again),
    )?;
    check(
        c.balance(&ck).await? == "900.00",
        "no second refund",
        "another balance",
    )
}

pub(super) async fn complaint_ticket(c: &mut Ctx) -> Outcome {
    let (mk, ck, _, p) = c.paid("20.01").await?;
    let id = field(&p, "id")?.to_owned();
    let k = complain(c, &ck, &id, None).await?;
    expect(&k, 201, None)?;
    check(
        k.json["status"] == "open"
            && k.json["waiting_for"] == "merchant"
            && k.json["due_at"].is_string(),
        "a 20.01 complaint opens a ticket for the merchant, with a deadline",
        summary(&k),
    )?;
    check(
        c.balance(&ck).await? == "879.99",
        "no money moved yet (879.99)",
        "another balance",
    )?;
    // The merchant answers with a refund of all of it: resolved.
    let kid = field(&k, "id")?.to_owned();
    let a = c
        .post_money(
            &format!("/v1/complaints/{kid}/answer"),
            &mk,
            json!({ "action": "refund" }),
        )
        .await?;
    expect(&a, 200, None)?;
    check(
        a.json["status"] == "resolved" && a.json["resolution"] == "merchant_refund",
        "the merchant's full refund resolves it",
        summary(&a),
    )?;
    check(
        c.balance(&ck).await? == "900.00",
        "the refund reached the wallet",
        "another balance",
    )
}

pub(super) async fn complaint_instant_cap(c: &mut Ctx) -> Outcome {
    let (instant, last) = small_complaints(c, 4, "1.00").await?;
    check(
        instant <= 3 && last == "open",
        "at most 3 instant refunds per payer; past the cap a complaint is a ticket",
        format!("{instant} instant refunds; the 4th complaint is {last}"),
    )
}

pub(super) async fn complaint_instant_cap_amount(c: &mut Ctx) -> Outcome {
    let (instant, last) = small_complaints(c, 3, "19.00").await?;
    check(
        instant <= 2 && last == "open",
        "instant refunds of a payer add up to at most 50.00; the 3rd complaint of 19.00 is a ticket",
        format!("{instant} instant refunds; the 3rd complaint is {last}"),
    )
}

/// A new payer pays `n` times `amount` and complains about each payment:
/// how many were refunded on the spot, and the status of the last.
async fn small_complaints(c: &mut Ctx, n: usize, amount: &str) -> Result<(usize, String), Stop> {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("900.00", "II").await?;
    let mut instant = 0;
    let mut last = String::new();
    for _ in 0..n {
        let (code, _) = c.payment_code(&ck).await?;
        let p = c.charge(&mk, &code, amount).await?;
        expect(&p, 201, None)?;
        let id = field(&p, "id")?.to_owned();
        let k = complain(c, &ck, &id, None).await?;
        expect(&k, 201, None)?;
        last = field(&k, "status")?.to_owned();
        if last == "refunded_instantly" {
            instant += 1;
        }
    }
    Ok((instant, last))
}

pub(super) async fn complaint_deadline(c: &mut Ctx) -> Outcome {
    let (_, ck, _, p) = c.paid("50.00").await?;
    let id = field(&p, "id")?.to_owned();
    let k = complain(c, &ck, &id, None).await?;
    expect(&k, 201, None)?;
    let (Some(filed), Some(due)) = (
        k.json["created_at"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339),
        k.json["due_at"].as_str().and_then(Timestamp::parse_rfc3339),
    ) else {
        return Err(fail("created_at and due_at as RFC 3339 times", summary(&k)));
    };
    let window = due.millis_since(filed);
    check(
        (1..=86_400_000).contains(&window),
        "the merchant's deadline is at most 24 h after filing",
        format!("{window} ms"),
    )?;
    if window > DEADLINE_WAIT_MS / 2 {
        return Err(Stop::Skip(format!(
            "the declared deadline ({window} ms) is within the rule; watching it pass needs a target configured with QG-COMPLAINT-FIRST-REPLY of at most {} s",
            DEADLINE_WAIT_MS / 2000
        )));
    }
    let kid = field(&k, "id")?.to_owned();
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(u64::try_from(DEADLINE_WAIT_MS).unwrap_or(0));
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        let r = c
            .call(
                "GET",
                &format!("/v1/complaints/{kid}"),
                Some(&ck),
                None,
                None,
            )
            .await?;
        expect(&r, 200, None)?;
        if r.json["status"] == "escalated" {
            return check(
                r.json["escalated_at"].is_string() && r.json["waiting_for"] == "operator",
                "escalated to the operator by itself",
                summary(&r),
            );
        }
        if tokio::time::Instant::now() > deadline {
            return Err(fail(
                "the unanswered complaint escalated after its deadline",
                summary(&r),
            ));
        }
    }
}

pub(super) async fn complaint_tenancy(c: &mut Ctx) -> Outcome {
    let (_, _, _, p) = c.paid("15.00").await?;
    let id = field(&p, "id")?.to_owned();
    // Another payer cannot complain about it: 404, as for a missing one.
    let (_, stranger) = c.customer("10.00", "II").await?;
    let r = complain(c, &stranger, &id, None).await?;
    expect(&r, 404, None)?;
    // Its payer files; another merchant cannot see the complaint.
    let (_, mk2) = c.merchant().await?;
    let (_, payer1, _, p1) = c.paid("30.00").await?;
    let id1 = field(&p1, "id")?.to_owned();
    let k = complain(c, &payer1, &id1, None).await?;
    expect(&k, 201, None)?;
    let kid = field(&k, "id")?.to_owned();
    let r = c
        .call(
            "GET",
            &format!("/v1/complaints/{kid}"),
            Some(&mk2),
            None,
            None,
        )
        .await?;
    expect(&r, 404, None)?;
    let list = c
        .call("GET", "/v1/complaints", Some(&mk2), None, None)
        .await?;
    expect(&list, 200, None)?;
    check(
        list.json["data"]
            .as_array()
            .is_some_and(|d| d.iter().all(|k| k["id"] != kid.as_str())),
        "another merchant's list does not hold it",
        summary(&list),
    )
}

/// A distinct PNG-looking picture of `len` bytes (at least the signature).
fn png(n: usize, len: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(format!("qgc-photo-{n}").as_bytes());
    b.resize(len.max(b.len()), 0);
    b
}

/// The payer posts `bytes` as a photo of complaint `kid`.
async fn add_photo(c: &mut Ctx, ck: &str, kid: &str, bytes: Vec<u8>) -> Result<Resp, Stop> {
    let path = format!("/v1/complaints/{kid}/photos");
    try_photo(c, ck, kid, bytes)
        .await
        .map_err(|e| fail(format!("an answer to POST {path}"), e))
}

/// [`add_photo`], saying a failed exchange instead of stopping (on a
/// connection of its own: the target may refuse an oversized body early
/// and close).
async fn try_photo(c: &mut Ctx, ck: &str, kid: &str, bytes: Vec<u8>) -> Result<Resp, String> {
    let req = crate::client::Req {
        method: "POST",
        path: format!("/v1/complaints/{kid}/photos"),
        key: Some(ck),
        body: Some(bytes),
        content_type: Some("image/png"),
        idempotency_key: None,
    };
    let (resp, ex) = c.http.send_alone(req).await?;
    c.exchanges.push(ex);
    Ok(resp)
}

/// A ticket (a 50.00 complaint) of a new payer: (payer's key, complaint id).
async fn ticket(c: &mut Ctx) -> Result<(String, String), Stop> {
    let (_, ck, _, p) = c.paid("50.00").await?;
    let id = field(&p, "id")?.to_owned();
    let k = complain(c, &ck, &id, None).await?;
    expect(&k, 201, None)?;
    Ok((ck, field(&k, "id")?.to_owned()))
}

pub(super) async fn complaint_photo_size(c: &mut Ctx) -> Outcome {
    let max = usize::try_from(super::levels::rule_value(c, "QG-COMPLAINT-PHOTO-BYTES").await?)
        .map_err(|_| fail("a photo size limit", "a negative one"))?;
    let (ck, kid) = ticket(c).await?;
    match try_photo(c, &ck, &kid, png(0, max + 1)).await {
        Ok(r) => {
            expect(&r, 413, Some("photo_too_large"))?;
            check(
                r.rule() == "QG-COMPLAINT-PHOTO-BYTES",
                "the refusal names QG-COMPLAINT-PHOTO-BYTES",
                summary(&r),
            )?;
        }
        // A target may answer early and close while the body is still
        // being sent: refused too, if it is still up (and, below, nothing
        // was stored).
        Err(e) => {
            let health = c.call("GET", "/healthz", None, None, None).await?;
            check(
                health.status == 200,
                "the target still healthy after closing on an oversized photo",
                format!("{e}; then /healthz {}", health.status),
            )?;
        }
    }
    // Exactly the limit is taken and stored as sent.
    let exact = png(1, max);
    let want = hex_sha256(&exact);
    let r = add_photo(c, &ck, &kid, exact).await?;
    expect(&r, 201, None)?;
    check(
        r.json["size_bytes"] == max && r.json["sha256"] == want.as_str(),
        format!("a photo of exactly {max} bytes stored as sent"),
        summary(&r),
    )?;
    let k = c
        .call(
            "GET",
            &format!("/v1/complaints/{kid}"),
            Some(&ck),
            None,
            None,
        )
        .await?;
    expect(&k, 200, None)?;
    check(
        k.json["photos"].as_array().map(Vec::len) == Some(1),
        "the complaint lists one photo (the oversized one was not stored)",
        summary(&k),
    )
}

pub(super) async fn complaint_photos(c: &mut Ctx) -> Outcome {
    let cap = usize::try_from(super::levels::rule_value(c, "QG-COMPLAINT-PHOTOS").await?)
        .map_err(|_| fail("a photo count limit", "a negative one"))?;
    let (ck, kid) = ticket(c).await?;
    for n in 0..cap {
        let r = add_photo(c, &ck, &kid, png(n, 64)).await?;
        expect(&r, 201, None)?;
    }
    let r = add_photo(c, &ck, &kid, png(cap, 64)).await?;
    expect(&r, 409, Some("photo_limit"))?;
    // The same picture again is the stored photo, not a refusal.
    let r = add_photo(c, &ck, &kid, png(0, 64)).await?;
    expect(&r, 200, None)?;
    check(
        r.json["seq"] == 1,
        "a photo sent again is answered with the stored one",
        summary(&r),
    )
}

pub(super) async fn complaint_tamper_suspend(c: &mut Ctx) -> Outcome {
    let need = super::levels::rule_value(c, "QG-COMPLAINT-TAMPER-REPORTS").await?;
    if !(1..=10).contains(&need) {
        return Err(Stop::Skip(format!(
            "the target suspends a code after {need} reports; the suite files at most 10"
        )));
    }
    let (_, mk) = c.merchant().await?;
    let sc = c
        .call("POST", "/v1/static-codes", Some(&mk), None, None)
        .await?;
    expect(&sc, 201, None)?;
    let (sid, payload) = (
        field(&sc, "id")?.to_owned(),
        field(&sc, "payload")?.to_owned(),
    );
    for n in 1..=need {
        let (_, ck) = c.customer("100.00", "II").await?;
        let p = c
            .post_money(
                "/v1/scans",
                &ck,
                json!({ "payload": payload, "amount": "30.00" }),
            )
            .await?;
        expect(&p, 201, None)?;
        let id = field(&p, "id")?.to_owned();
        let body = json!({ "payment_id": id, "reason": "code_tampered", "description": "a sticker over the shop's code", "amount": "30.00" });
        let k = c.post_money("/v1/complaints", &ck, body).await?;
        expect(&k, 201, None)?;
        let now = code_status(c, &mk, &sid).await?;
        let want = if n < need { "active" } else { "suspended" };
        check(
            now == want,
            format!("after {n} of {need} payers' reports the code is {want}"),
            now,
        )?;
    }
    let (_, ck) = c.customer("100.00", "II").await?;
    let p = c
        .post_money(
            "/v1/scans",
            &ck,
            json!({ "payload": payload, "amount": "1.00" }),
        )
        .await?;
    expect(&p, 422, Some("code_suspended"))?;
    check(
        c.balance(&ck).await? == "100.00",
        "a scan of the suspended code moves no money",
        "another balance",
    )
}

/// A static code's status as its merchant reads it.
async fn code_status(c: &mut Ctx, mk: &str, sid: &str) -> Result<String, Stop> {
    let r = c
        .call(
            "GET",
            &format!("/v1/static-codes/{sid}"),
            Some(mk),
            None,
            None,
        )
        .await?;
    expect(&r, 200, None)?;
    Ok(field(&r, "status")?.to_owned())
}

fn hex_sha256(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}
