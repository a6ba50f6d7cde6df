//! Signed webhook deliveries, checked by a receiver of the suite's own.

use super::*;

/// A loopback HTTP receiver: records (Qrgate-Signature, body) of each POST.
pub(super) async fn receiver() -> Result<
    (
        std::net::SocketAddr,
        std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    ),
    Stop,
> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail("a local port for the webhook receiver", e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| fail("a local address", e.to_string()))?;
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0_u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let header = |name: &str| {
                        head.lines().find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.trim().to_owned())
                        })
                    };
                    let len: usize = header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if body.len() < len {
                        continue;
                    }
                    if let Ok(mut g) = sink.lock() {
                        g.push((
                            header("qrgate-signature").unwrap_or_default(),
                            body[..len].to_owned(),
                        ));
                    }
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    Ok((addr, got))
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`, within five minutes.
pub(super) fn signature_ok(secret: &str, header: &str, body: &str) -> Result<(), String> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = Some(x.to_owned()),
            _ => {}
        }
    }
    let t = t.ok_or("no t= timestamp")?;
    let v1 = v1.ok_or("no v1= signature")?;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
    .unwrap_or(0);
    if (now - t).abs() > 300 {
        return Err(format!(
            "timestamp {t} is more than five minutes from now ({now})"
        ));
    }
    let tag: Vec<u8> = (0..v1.len())
        .step_by(2)
        .filter_map(|i| {
            v1.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, format!("{t}.{body}").as_bytes(), &tag)
        .map_err(|_| "the HMAC does not match".to_owned())
}

pub(super) async fn webhook_signed(c: &mut Ctx) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let (addr, got) = receiver().await?;
    let ep = c
        .call(
            "POST",
            "/v1/webhook-endpoints",
            Some(&mk),
            Some(json!({ "url": format!("http://{addr}/hook") })),
            None,
        )
        .await?;
    if ep.status != 201 {
        return Err(Stop::Skip(format!(
            "the target does not accept a webhook to this suite's loopback receiver (HTTP {}); run the suite on the target's host to check webhooks",
            ep.status
        )));
    }
    let secret = field(&ep, "secret")?.to_owned();
    let (_, ck) = c.customer("100.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, "1.00").await?, 201, None)?;
    for _ in 0..100 {
        if got.lock().map(|g| !g.is_empty()).unwrap_or(false) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let deliveries = got.lock().map(|g| g.clone()).unwrap_or_default();
    let Some((sig, body)) = deliveries.first() else {
        return Err(Stop::Skip(
            "no webhook reached this suite's receiver within 10 s (is the target on another host?)"
                .into(),
        ));
    };
    check(
        sig.contains("t=") && sig.contains("v1="),
        "a Qrgate-Signature header with t= and v1=",
        sig.clone(),
    )?;
    signature_ok(&secret, sig, body).map_err(|e| fail("a valid Qrgate-Signature", e))?;
    let ev: serde_json::Value =
        serde_json::from_str(body).map_err(|e| fail("a JSON event", e.to_string()))?;
    check(
        ev["type"] == "payment.succeeded",
        "a payment.succeeded event",
        body.clone(),
    )
}
