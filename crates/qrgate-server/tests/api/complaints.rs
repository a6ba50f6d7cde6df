//! A complaint's photos over HTTP: the raw image as the body, the size
//! refused before the body is read past the rule, the stored image served
//! with headers that keep a browser from running it.

use super::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRphoto";

async fn photo(app: &App, key: &str, id: &str, ct: &str, bytes: Vec<u8>) -> Res {
    let req = Request::builder()
        .method("POST")
        .uri(format!("/v1/complaints/{id}/photos"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", ct)
        .body(Body::from(bytes))
        .unwrap();
    app.send(req).await
}

#[tokio::test]
async fn photos_go_up_as_raw_images_and_come_back_inert() {
    let app = app_on(sqlite_store().await).await;
    let (_, mk, _, ck) = app.parties().await;
    let sc = app
        .call("POST", "/v1/static-codes", Some(&mk), None, &[])
        .await;
    let payload = sc.json["payload"].as_str().unwrap();
    let pay = app
        .call(
            "POST",
            "/v1/scans",
            Some(&ck),
            Some(json!({ "payload": payload, "amount": "50.00" })),
            &[("idempotency-key", "scan-photo")],
        )
        .await;
    assert_eq!(pay.status, StatusCode::CREATED, "{:?}", pay.json);
    let k = app
        .call(
            "POST",
            "/v1/complaints",
            Some(&ck),
            Some(json!({ "payment_id": pay.json["id"], "reason": "not_received", "description": "nothing came" })),
            &[("idempotency-key", "complaint-photo")],
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{:?}", k.json);
    let id = k.json["id"].as_str().unwrap();

    let r = photo(&app, &ck, id, "image/png", PNG.to_vec()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert_eq!(r.json["seq"], 1);
    let r = photo(&app, &ck, id, "image/png", PNG.to_vec()).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the same picture is the stored photo"
    );
    let r = photo(&app, &ck, id, "image/jpeg", PNG.to_vec()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(err(&r).0, "photo_type");

    // One byte past the rule is refused with the rule named (the body is
    // not read past it), chunked or not.
    let max = 2 * 1024 * 1024;
    let mut big = PNG.to_vec();
    big.resize(max + 1, 0);
    let r = photo(&app, &ck, id, "image/png", big.clone()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        err(&r),
        ("photo_too_large", Some("QG-COMPLAINT-PHOTO-BYTES"))
    );
    let chunks = futures_util::stream::iter(
        big.chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let req = Request::builder()
        .method("POST")
        .uri(format!("/v1/complaints/{id}/photos"))
        .header("authorization", format!("Bearer {ck}"))
        .header("content-type", "image/png")
        .body(Body::from_stream(chunks))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.json);
    // Exactly the rule is taken, past the API's 64 KiB JSON limit.
    big.truncate(max);
    let r = photo(&app, &ck, id, "image/png", big.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    assert_eq!(r.json["seq"], 2);

    // The merchant reads it back, byte for byte, marked inert.
    let r = app
        .call(
            "GET",
            &format!("/v1/complaints/{id}/photos/2"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes, big);
    assert_eq!(r.headers["content-type"], "image/png");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert!(
        r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    let r = app
        .call(
            "GET",
            &format!("/v1/complaints/{id}/photos/x"),
            Some(&mk),
            None,
            &[],
        )
        .await;
    assert_eq!((r.status, err(&r).0), (StatusCode::NOT_FOUND, "not_found"));
    let r = app
        .call("GET", &format!("/v1/complaints/{id}"), Some(&mk), None, &[])
        .await;
    assert_eq!(r.json["photos"].as_array().map(Vec::len), Some(2));
}
