//! Signing keys: retiring one that signed codes still in force.

use super::*;

#[tokio::test]
async fn retiring_a_key_that_signed_live_codes_needs_the_operator_to_say_so() {
    let app = app_on(sqlite_store().await).await;
    let a = Some(app.admin.as_str());
    let (_, mk, _, ck) = app.parties().await;
    let sc = app
        .call("POST", "/v1/static-codes", Some(&mk), None, &[])
        .await;
    let sid = sc.json["id"].as_str().unwrap().to_owned();
    let signer = app.call("GET", "/v1/keys", None, None, &[]).await.json["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = app
        .call("POST", "/v1/admin/keys/rotate", a, None, &[])
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.json);
    let retire = format!("/v1/admin/keys/{signer}/retire");
    let r = app.call("POST", &retire, a, None, &[]).await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::CONFLICT, "key_recently_rotated")
    );
    app.clock.advance_seconds(10);
    let r = app.call("POST", &retire, a, None, &[]).await;
    assert_eq!(
        (r.status, err(&r).0),
        (StatusCode::CONFLICT, "key_signs_live_codes")
    );
    let r = app
        .call(
            "POST",
            &format!("{retire}?invalidate_codes=maybe"),
            a,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json);
    let r = app
        .call(
            "POST",
            &format!("{retire}?invalidate_codes=true"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(err(&r).0, "forbidden");
    let r = app
        .call(
            "POST",
            &format!("{retire}?invalidate_codes=true"),
            a,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["invalidated"]["static_codes"][0]["id"], sid.as_str());
    assert_eq!(r.json["invalidated"]["open_orders"], 0);
    // The code on the counter no longer pays.
    let payload = sc.json["payload"].as_str().unwrap();
    let scan = app
        .call(
            "POST",
            "/v1/scans",
            Some(&ck),
            Some(json!({ "payload": payload, "amount": "1.00" })),
            &[("idempotency-key", "scan-after-retire")],
        )
        .await;
    assert_eq!(
        scan.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        scan.json
    );
}
