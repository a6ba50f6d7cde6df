//! The cases. Each has a stable id, the rule of `spec/rules.toml` it checks,
//! MUST or SHOULD (from the rule), and creates only its own test parties.

use std::future::Future;
use std::pin::Pin;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use serde_json::json;

use qrgate_codes::cpm::UnverifiedToken;
use qrgate_codes::emv;
use qrgate_codes::handle::SealedHandle;
use qrgate_codes::keyring::{KeyId, Keyring, PublicKeySet};
use qrgate_codes::merchant;
use qrgate_core::Timestamp;

use crate::client::Req;
use crate::ctx::{Ctx, Outcome, Stop, check, expect, expect_refused, fail, field, summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
}

pub type BoxFut<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

pub struct Case {
    pub id: &'static str,
    pub rule: &'static str,
    pub level: Level,
    pub title: &'static str,
    pub run: for<'a> fn(&'a mut Ctx) -> BoxFut<'a>,
}

macro_rules! case {
    ($id:literal, $rule:literal, $level:ident, $title:literal, $f:ident) => {
        Case {
            id: $id,
            rule: $rule,
            level: Level::$level,
            title: $title,
            run: |c| Box::pin($f(c)),
        }
    };
}

/// Every case, in the order they run.
pub fn all() -> Vec<Case> {
    vec![
        case!(
            "QGC-CODE-STATIC-EMV",
            "BCP-CODE-SIGNED",
            Should,
            "static codes are valid EMV MPM (structure, CRC, strict EMVCo profile)",
            static_emv
        ),
        case!(
            "QGC-CODE-ORDER-EMV",
            "BCP-CODE-SIGNED",
            Should,
            "order codes are valid EMV MPM carrying the order's amount",
            order_emv
        ),
        case!(
            "QGC-CODE-VERIFIES-OFFLINE",
            "BCP-CODE-SIGNED",
            Should,
            "merchant codes verify offline against GET /v1/keys",
            verifies_offline
        ),
        case!(
            "QGC-CODE-TAMPERED",
            "BCP-CODE-SIGNED",
            Should,
            "an altered (re-CRC'd) or truncated merchant code is refused",
            tampered
        ),
        case!(
            "QGC-CODE-FOREIGN-KEY",
            "BCP-CODE-SIGNED",
            Should,
            "a code signed with a key the target did not publish is refused",
            foreign_key
        ),
        case!(
            "QGC-CPM-DYNAMIC",
            "BCP-MODE-CPM-DYNAMIC",
            Must,
            "consumer payment codes are new for every request",
            cpm_dynamic
        ),
        case!(
            "QGC-CPM-TTL",
            "BCP-CODE-TTL",
            Must,
            "consumer payment codes are valid for at most 60 seconds",
            cpm_ttl
        ),
        case!(
            "QGC-CPM-SINGLE-USE",
            "BCP-CODE-SINGLE-USE",
            Must,
            "a payment code pays once; the second charge is refused and nothing moves",
            single_use
        ),
        case!(
            "QGC-CPM-SINGLE-USE-FAILED",
            "BCP-CODE-SINGLE-USE",
            Must,
            "a code whose payment was declined cannot be used again",
            single_use_failed
        ),
        case!(
            "QGC-CPM-RACE",
            "BCP-CODE-SINGLE-USE",
            Must,
            "16 parallel charges of one code: exactly one succeeds",
            single_use_race
        ),
        case!(
            "QGC-CODE-NO-SENSITIVE",
            "BCP-CODE-NO-SENSITIVE",
            Must,
            "issued codes carry no customer id, phone, card or ID number",
            no_sensitive
        ),
        case!(
            "QGC-LIMIT-C-BOUNDARY",
            "BCP-LIMIT-C-DAILY",
            Must,
            "level C: 999.99 + 0.01 accepted, one more fen refused with the rule",
            limit_c
        ),
        case!(
            "QGC-LIMIT-C-RACE",
            "BCP-LIMIT-C-DAILY",
            Must,
            "16 parallel 100.00 payments never pass the 1,000.00 level-C cap",
            limit_c_race
        ),
        case!(
            "QGC-LIMIT-D-BOUNDARY",
            "BCP-LIMIT-D-STATIC",
            Must,
            "static code: 499.99 + 0.01 accepted, one more fen refused with the rule",
            limit_d
        ),
        case!(
            "QGC-LIMIT-SEPARATE",
            "BCP-LIMIT-NESTED",
            Must,
            "where the target states separate caps: with the level-C cap used up, a static (level D) payment still has D's own cap",
            limits_separate
        ),
        case!(
            "QGC-LIMIT-NESTED",
            "BCP-LIMIT-NESTED",
            Must,
            "where the target states nested caps: static (level D) payments count toward C, so after the C cap is used a static payment is refused citing C, and after D's cap a C payment has only what is left of C's",
            limits_nested
        ),
        case!(
            "QGC-RATE-CODE-ISSUE",
            "QG-RATE-CODE-ISSUE",
            Must,
            "one consumer key asking for payment codes past the stated rate gets 429 with Retry-After and the rule",
            rate_code_issue
        ),
        case!(
            "QGC-RATE-UNKNOWN-CODE",
            "QG-RATE-UNKNOWN-CODE",
            Must,
            "one merchant key charging unknown numeric codes past the stated rate gets 429 (a brake on guessing codes)",
            rate_unknown_code
        ),
        case!(
            "QGC-RATE-PIN",
            "QG-RATE-PIN",
            Must,
            "PIN attempts for one customer past the stated rate get 429, on top of the lock-out",
            rate_pin
        ),
        case!(
            "QGC-CONFIRM-RACE",
            "QG-ONE-OUTCOME",
            Must,
            "two confirmations of one waiting payment sent at once: exactly one completes it, the other is a 409, and the payer is charged once",
            confirm_race
        ),
        case!(
            "QGC-PIN-CHANGE",
            "QG-CREDENTIALS",
            Must,
            "a set PIN is not replaced without the current one (409), a wrong current one is refused (422), and after a change the old PIN no longer works",
            pin_change
        ),
        case!(
            "QGC-DEVICE-REVOKE",
            "QG-CREDENTIALS",
            Must,
            "a code a device signed offline before it was revoked is refused after (device_revoked), and nothing moves",
            device_revoke
        ),
        case!(
            "QGC-WEBHOOK-TARGETS",
            "QG-WEBHOOK-TARGETS",
            Must,
            "webhook URLs with user info, plain http to a public name, or https to the cloud metadata address, a private address or loopback written as IPv4-in-IPv6 or in hex are refused with invalid_url",
            webhook_targets
        ),
        case!(
            "QGC-LIMIT-SCOPE",
            "BCP-LIMIT-SCOPE",
            Must,
            "the daily cap limits the payer across merchants",
            limit_scope
        ),
        case!(
            "QGC-LIMIT-B-BOUNDARY",
            "BCP-LIMIT-B-DAILY",
            Must,
            "level B (PIN + device signature): 5,000.00 a day, one more fen refused with the rule",
            limit_b
        ),
        case!(
            "QGC-LIMIT-A-BOUNDARY",
            "BCP-LIMIT-A-DAILY",
            Must,
            "level A (PIN + certificate signature) within the customer's agreed daily cap: the cap accepted, one more payment over it refused with the rule",
            limit_a
        ),
        case!(
            "QGC-ACCT-CLASS-II",
            "BCP-ACCT-CLASS-II",
            Must,
            "a class-II wallet pays at most 100,000.00 a year from its balance (reached at level A), one more fen refused",
            class_two
        ),
        case!(
            "QGC-ACCT-CLASS-III",
            "BCP-ACCT-CLASS-III",
            Must,
            "a class-III wallet pays at most 200,000.00 a year from its balance (reached at level A), one more fen refused",
            class_three
        ),
        case!(
            "QGC-WEBHOOK-SIGNED",
            "QG-WEBHOOK-SIGNED",
            Must,
            "webhooks arrive signed: Qrgate-Signature t= and v1= HMAC-SHA256 over t.body",
            webhook_signed
        ),
        case!(
            "QGC-ACCT-CLASS-I",
            "BCP-ACCT-CLASS-I",
            Must,
            "a class-I wallet pays at most 1,000.00 from its balance, whatever the level",
            class_one
        ),
        case!(
            "QGC-STEPUP-PIN",
            "BCP-ELEMENTS",
            Must,
            "over the C cap, a PIN steps a device-signed payment up to level B; a wrong PIN never completes it",
            stepup
        ),
        case!(
            "QGC-STEPUP-OTP",
            "BCP-ELEMENTS",
            Must,
            "a PIN and an authenticator-app one-time password (TOTP) step a payment up to level B; the same one-time password is refused the second time",
            stepup_otp
        ),
        case!(
            "QGC-STEPUP-BIOMETRIC",
            "BCP-ELEMENTS",
            Must,
            "a device signature asserting a biometric check steps a payment up to level B without the PIN once biometrics were turned on for the device (with the PIN); before that, or without the assertion, it does not",
            stepup_biometric
        ),
        case!(
            "QGC-PASSWORD-FREE-COUNT",
            "BCP-PASSWORD-FREE-COUNT",
            Should,
            "past the target's password-free count a payment without the PIN is declined citing the rule, and for a payer with a PIN it waits for a confirmation that includes the PIN",
            password_free_count
        ),
        case!(
            "QGC-TXN-CAP",
            "BCP-TXN-CAP",
            Should,
            "a single payment above the target's per-transaction cap is declined citing the rule, without moving money",
            txn_cap
        ),
        case!(
            "QGC-VELOCITY-CUSTOMER",
            "QG-VELOCITY-CUSTOMER",
            Should,
            "a customer's payments past the target's per-minute velocity limit are declined citing the rule",
            velocity
        ),
        case!(
            "QGC-MPM-RISK-PROMPT",
            "BCP-MPM-RISK-PROMPT",
            Must,
            "a risk prompt comes with a generated static code, with the verification of a scanned code (naming the merchant) and with the payer's answer to a scanned-code payment",
            mpm_risk_prompt
        ),
        case!(
            "QGC-RETENTION",
            "BCP-RETENTION",
            Must,
            "no API path deletes a payment, its refunds or the audit log: DELETE is refused and the records read back unchanged",
            retention
        ),
        case!(
            "QGC-ANOMALY-AMOUNT",
            "QG-ANOMALY-AMOUNT",
            Should,
            "a payment far above the payer's usual amount succeeds but is flagged for review, with the rule, in the record admins and auditors read",
            anomaly_amount
        ),
        case!(
            "QGC-PERSONAL-CODE-PAYERS",
            "QG-PERSONAL-CODE-PAYERS",
            Should,
            "a personal small merchant paid by as many distinct payers in a day as the target's threshold has its next payment flagged for review (observed when the threshold is at most 10)",
            personal_code_payers
        ),
        case!(
            "QGC-BLOCKLIST",
            "QG-BLOCKLIST",
            Must,
            "a blocked payer and a blocked merchant are declined with the rule, without moving money; lifting the block restores payments",
            blocklist
        ),
        case!(
            "QGC-SMALL-MERCHANT-CREDIT-DAY",
            "BCP-SMALL-MERCHANT-CREDIT-DAY",
            Must,
            "credit-card receipts of one person's small merchants, across two merchant entries, reach the day cap and no further; debit cards are outside it",
            small_credit_day
        ),
        case!(
            "QGC-SMALL-MERCHANT-CREDIT-MONTH",
            "BCP-SMALL-MERCHANT-CREDIT-MONTH",
            Must,
            "the stated month cap of a small merchant's credit-card receipts is at most 10,000.00 CNY, and a receipt past it is refused with the rule (observed when the target's month cap is below its day cap)",
            small_credit_month
        ),
        case!(
            "QGC-REFUND-WINDOW",
            "BCP-REFUND-WINDOW",
            Should,
            "the refund window the target states is at most 365 days, and a refund after it is refused with the rule (observed when the window is at most 20 s)",
            refund_window
        ),
        case!(
            "QGC-CANCEL-WINDOW",
            "QG-CANCEL-WINDOW",
            Should,
            "a payment canceled inside the stated window goes back to the payer in full; after the window the cancel is refused with the rule (observed when the window is at most 20 s)",
            cancel_window
        ),
        case!(
            "QGC-STEPUP-TTL",
            "QG-STEPUP-TTL",
            Should,
            "a payment waiting for step-up declares a deadline within 300 s and cannot be confirmed after it (observed when the target's deadline is at most 20 s)",
            stepup_ttl
        ),
        case!(
            "QGC-PIN-LOCK-MINUTES",
            "QG-PIN-LOCK-MINUTES",
            Must,
            "a locked PIN stays locked at least 30 minutes: the unlock time the gateway shows, and the right PIN refused meanwhile",
            pin_lock_minutes
        ),
        case!(
            "QGC-PIN-LOCKOUT",
            "QG-PIN-LOCKOUT",
            Must,
            "five wrong PINs lock the PIN; the right PIN is then refused",
            pin_lockout
        ),
        case!(
            "QGC-REFUND-CAP",
            "BCP-REFUND-CAP",
            Must,
            "refunds never exceed the captured amount; failed payments cannot be refunded",
            refund_cap
        ),
        case!(
            "QGC-CANCEL-REFUND-RACE",
            "BCP-REFUND-CAP",
            Must,
            "a cancel and a full refund of one payment sent at once: one pays back, the books agree with the payments",
            cancel_refund_race
        ),
        case!(
            "QGC-REFUND-IDEMPOTENT",
            "BCP-REFUND-IDEMPOTENT",
            Must,
            "a retried refund number refunds once",
            refund_idempotent
        ),
        case!(
            "QGC-REFUND-ORIGINAL",
            "BCP-REFUND-ORIGINAL",
            Must,
            "a refund goes back to the paying wallet",
            refund_original
        ),
        case!(
            "QGC-REFUND-COUNT",
            "BCP-REFUND-COUNT",
            Should,
            "at most 50 partial refunds per payment",
            refund_count
        ),
        case!(
            "QGC-ORDER-TTL",
            "QG-ORDER-TTL",
            Should,
            "an order code cannot be made to live longer than the rule allows",
            order_ttl
        ),
        case!(
            "QGC-IDEMPOTENCY-REPLAY",
            "QG-IDEMPOTENCY",
            Must,
            "same key and body: the stored answer, marked replayed, charged once",
            idem_replay
        ),
        case!(
            "QGC-IDEMPOTENCY-REUSE",
            "QG-IDEMPOTENCY",
            Must,
            "same key, another body: 409 idempotency_key_reused",
            idem_reuse
        ),
        case!(
            "QGC-AUTH-NO-KEY",
            "QG-AUTH",
            Must,
            "no key or an unknown key: 401",
            auth_no_key
        ),
        case!(
            "QGC-AUTH-WRONG-ROLE",
            "QG-AUTH",
            Must,
            "a key of the wrong role: 403",
            auth_wrong_role
        ),
        case!(
            "QGC-AUTH-REVOKED",
            "QG-AUTH",
            Must,
            "a revoked key stops working: 401",
            auth_revoked
        ),
        case!(
            "QGC-TENANCY",
            "QG-TENANCY",
            Must,
            "another merchant's payment answers 404 and is not listed",
            tenancy
        ),
        case!(
            "QGC-INPUT-AMOUNT",
            "QG-INPUT",
            Must,
            "malformed amounts are refused: JSON number, too many decimals, negative, zero, exponent",
            input_amount
        ),
        case!(
            "QGC-INPUT-CURRENCY",
            "QG-INPUT",
            Must,
            "unknown and mismatched currencies are refused",
            input_currency
        ),
        case!(
            "QGC-INPUT-BODY",
            "QG-INPUT",
            Must,
            "oversized bodies, unknown fields and a wrong content type are refused",
            input_body
        ),
        case!(
            "QGC-LEDGER-BALANCED",
            "QG-LEDGER-BALANCED",
            Must,
            "the auditor's view of the ledger balances in every currency",
            ledger_balanced
        ),
        case!(
            "QGC-AUDIT-CHAIN",
            "QG-AUDIT-CHAIN",
            Must,
            "the audit log's hash chain verifies",
            audit_chain
        ),
    ]
}

fn money(s: &str) -> i64 {
    let (a, b) = s.split_once('.').unwrap_or((s, "0"));
    a.parse::<i64>().unwrap_or(0) * 100 + format!("{b:0<2}")[..2].parse::<i64>().unwrap_or(0)
}

async fn published_keys(c: &mut Ctx) -> Result<PublicKeySet, Stop> {
    let r = c.call("GET", "/v1/keys", None, None, None).await?;
    expect(&r, 200, None)?;
    serde_json::from_value(r.json.clone()).map_err(|e| {
        fail(
            "GET /v1/keys as {keys: [{kid, alg, public_key, state, created_at}]}",
            e.to_string(),
        )
    })
}

async fn static_code(c: &mut Ctx, mk: &str) -> Result<String, Stop> {
    let r = c
        .call("POST", "/v1/static-codes", Some(mk), None, None)
        .await?;
    expect(&r, 201, None)?;
    Ok(field(&r, "payload")?.to_owned())
}

async fn order_code(c: &mut Ctx, mk: &str, amount: &str) -> Result<String, Stop> {
    let r = c
        .call(
            "POST",
            "/v1/orders",
            Some(mk),
            Some(json!({ "amount": amount })),
            None,
        )
        .await?;
    expect(&r, 201, None)?;
    Ok(field(&r, "payload")?.to_owned())
}

fn strict_emv(payload: &str) -> Result<emv::Payload, Stop> {
    let p = emv::parse(payload).map_err(|e| fail("a valid EMV payload", e.to_string()))?;
    let findings = emv::check_emvco(&p);
    check(
        findings.is_empty(),
        "no departures from EMVCo MPM",
        format!("{findings:?}"),
    )?;
    Ok(p)
}

async fn static_emv(c: &mut Ctx) -> Outcome {
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

async fn order_emv(c: &mut Ctx) -> Outcome {
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

async fn verifies_offline(c: &mut Ctx) -> Outcome {
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

fn reseal(body_without_crc: &str) -> String {
    let s = format!("{body_without_crc}6304");
    let crc = emv::crc_hex(s.as_bytes());
    format!("{s}{crc}")
}

async fn tampered(c: &mut Ctx) -> Outcome {
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

async fn foreign_key(c: &mut Ctx) -> Outcome {
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

async fn cpm_dynamic(c: &mut Ctx) -> Outcome {
    let (_, ck) = c.customer("0", "II").await?;
    let a = c.payment_code(&ck).await?;
    let b = c.payment_code(&ck).await?;
    check(
        a.0 != b.0 && a.1 != b.1,
        "two different codes",
        format!("{a:?} and {b:?}"),
    )
}

async fn cpm_ttl(c: &mut Ctx) -> Outcome {
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

async fn single_use(c: &mut Ctx) -> Outcome {
    let (mk, ck, code, _) = c.paid("10.00").await?;
    let r = c.charge(&mk, &code, "10.00").await?;
    expect_refused(&r, &[])?;
    check(
        c.balance(&ck).await? == "890.00",
        "charged once (890.00 left)",
        "another balance",
    )
}

async fn single_use_failed(c: &mut Ctx) -> Outcome {
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

async fn single_use_race(c: &mut Ctx) -> Outcome {
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
fn sensitive_digits(value: &str) -> Option<String> {
    value
        .split(|ch: char| !ch.is_ascii_digit())
        .find(|d| (d.len() == 11 && d.starts_with('1')) || (16..=19).contains(&d.len()))
        .map(str::to_owned)
}

async fn no_sensitive(c: &mut Ctx) -> Outcome {
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

async fn limit_c(c: &mut Ctx) -> Outcome {
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

async fn limit_c_race(c: &mut Ctx) -> Outcome {
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

async fn limit_d(c: &mut Ctx) -> Outcome {
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
enum Probe<'a> {
    /// A consumer key asks for a payment code.
    Issue(&'a str),
    /// A merchant key charges a well-formed numeric code nobody issued.
    Unknown(&'a str),
    /// A consumer changes its PIN giving a wrong current one.
    Pin(&'a str),
}

async fn probe(c: &mut Ctx, p: &Probe<'_>) -> Result<crate::client::Resp, Stop> {
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
async fn until_rate_limited(c: &mut Ctx, n: i64, rule: &str, p: Probe<'_>) -> Outcome {
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
async fn rate_rule(c: &mut Ctx, id: &str) -> Result<i64, Stop> {
    let n = rule_value(c, id).await?;
    if n > 200 {
        return Err(Stop::Skip(format!(
            "the target allows {n} a minute; this case observes at most 200"
        )));
    }
    Ok(n)
}

async fn rate_code_issue(c: &mut Ctx) -> Outcome {
    let n = rate_rule(c, "QG-RATE-CODE-ISSUE").await?;
    let (_, ck) = c.customer("1.00", "II").await?;
    until_rate_limited(c, n, "QG-RATE-CODE-ISSUE", Probe::Issue(&ck)).await
}

async fn rate_unknown_code(c: &mut Ctx) -> Outcome {
    let n = rate_rule(c, "QG-RATE-UNKNOWN-CODE").await?;
    let (_, mk) = c.merchant().await?;
    until_rate_limited(c, n, "QG-RATE-UNKNOWN-CODE", Probe::Unknown(&mk)).await
}

async fn rate_pin(c: &mut Ctx) -> Outcome {
    let n = rate_rule(c, "QG-RATE-PIN").await?;
    let (_, ck) = c.customer("1.00", "II").await?;
    set_pin(c, &ck).await?;
    until_rate_limited(c, n, "QG-RATE-PIN", Probe::Pin(&ck)).await
}

/// SKIP when the target nests its level caps: the case's sums assume each
/// level counts only its own payments (QGC-LIMIT-NESTED observes the other
/// reading).
async fn separate_caps_only(c: &mut Ctx) -> Outcome {
    if stated(c, "BCP-LIMIT-NESTED").await? == Some(1) {
        return Err(Stop::Skip(
            "the target nests its level caps (BCP-LIMIT-NESTED = 1); this case's sums assume separate caps".into(),
        ));
    }
    Ok(())
}

/// The reading of the level caps the target states (BCP-LIMIT-NESTED);
/// SKIP when it is not `want`.
async fn caps_reading(c: &mut Ctx, want: i64) -> Result<(i64, i64), Stop> {
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
async fn pay_static(
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

async fn limits_separate(c: &mut Ctx) -> Outcome {
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

async fn limits_nested(c: &mut Ctx) -> Outcome {
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

async fn limit_scope(c: &mut Ctx) -> Outcome {
    let (_, mk1) = c.merchant().await?;
    let (_, mk2) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "II").await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk1, &code, "1000.00").await?, 201, None)?;
    let (code, _) = c.payment_code(&ck).await?;
    let r = c.charge(&mk2, &code, "0.01").await?;
    expect(&r, 402, Some("limit_exceeded"))
}

fn device() -> Result<Ed25519KeyPair, Stop> {
    let rng = ring::rand::SystemRandom::new();
    let doc =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| fail("a device key", "rng failed"))?;
    Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| fail("a device key", "bad key"))
}

/// Enroll a device key for the consumer: (device id, key id).
async fn enroll(c: &mut Ctx, ck: &str, kp: &Ed25519KeyPair) -> Result<Enrolled, Stop> {
    let r = c
        .call(
            "POST",
            "/v1/devices",
            Some(ck),
            // The suite's customers use one PIN; once it is set, enrolling a
            // device needs it (a gateway ignores it before).
            Some(json!({ "public_key": URL_SAFE_NO_PAD.encode(kp.public_key().as_ref()), "pin": "493817" })),
            None,
        )
        .await?;
    expect(&r, 201, None)?;
    let id = field(&r, "id")?
        .parse()
        .map_err(|e: qrgate_core::IdError| fail("a device id", e.to_string()))?;
    let handles = r.json["handles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str()?.parse().ok())
        .collect::<Vec<SealedHandle>>();
    if handles.is_empty() {
        return Err(fail(
            "sealed handles in the enrolment answer (handles)",
            r.json.to_string(),
        ));
    }
    Ok(Enrolled {
        id,
        handles,
        next: Default::default(),
    })
}

/// An enrolled device: its id, and the sealed handles that name it in the
/// codes it signs (a fresh one for each code).
struct Enrolled {
    id: qrgate_core::id::DeviceId,
    handles: Vec<SealedHandle>,
    next: std::sync::atomic::AtomicUsize,
}

/// A payment token signed offline by an enrolled device (possession).
fn signed_token(kp: &Ed25519KeyPair, device: &Enrolled) -> Result<String, Stop> {
    let now = Timestamp::from_unix_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
        )
        .unwrap_or(0),
    );
    let i = device
        .next
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let sealed = device.handles[i % device.handles.len()];
    let claims = qrgate_codes::cpm::TokenClaims::new(
        qrgate_codes::cpm::Holder::Device { sealed },
        now,
        60,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| fail("a token", e.to_string()))?;
    Ok(claims.sign_with(kp))
}

/// A device-signed payment token from a freshly enrolled device.
async fn device_token(c: &mut Ctx, ck: &str, kp: &Ed25519KeyPair) -> Result<String, Stop> {
    let d = enroll(c, ck, kp).await?;
    signed_token(kp, &d)
}

/// Charge a device-signed token; if it needs step-up, confirm with the PIN.
async fn pay_stepped_up(
    c: &mut Ctx,
    mk: &str,
    ck: &str,
    kp: &Ed25519KeyPair,
    d: &Enrolled,
    amount: &str,
) -> Result<crate::client::Resp, Stop> {
    let token = signed_token(kp, d)?;
    let r = c.charge(mk, &token, amount).await?;
    if r.status != 201 || r.json["status"] != "requires_action" {
        return Ok(r);
    }
    let id = field(&r, "id")?.to_owned();
    c.post_money(
        &format!("/v1/payments/{id}/confirm"),
        ck,
        json!({ "pin": "493817" }),
    )
    .await
}

async fn set_pin(c: &mut Ctx, ck: &str) -> Outcome {
    let r = c
        .call(
            "POST",
            "/v1/me/pin",
            Some(ck),
            Some(json!({ "pin": "493817" })),
            None,
        )
        .await?;
    expect(&r, 200, None)
}

/// A customer able to pay at level A: agreement, PIN, device, certificate.
struct LevelA {
    key: String,
    device: Ed25519KeyPair,
    device_ids: Enrolled,
    certificate: Ed25519KeyPair,
    certificate_id: String,
}

async fn level_a_customer(
    c: &mut Ctx,
    topup: &str,
    class: &str,
    cap: &str,
) -> Result<LevelA, Stop> {
    let (id, key) = c.customer_with(topup, class, Some(cap)).await?;
    set_pin(c, &key).await?;
    let device = device()?;
    let device_ids = enroll(c, &key, &device).await?;
    let certificate = self::device()?;
    let r = c
        .as_admin(
            "POST",
            &format!("/v1/customers/{id}/certificates"),
            Some(
                json!({ "public_key": URL_SAFE_NO_PAD.encode(certificate.public_key().as_ref()) }),
            ),
        )
        .await?;
    expect(&r, 201, None)?;
    let certificate_id = field(&r, "id")?.to_owned();
    c.created(format!("certificate {certificate_id}"));
    Ok(LevelA {
        key,
        device,
        device_ids,
        certificate,
        certificate_id,
    })
}

/// The confirmation message of spec/formats.md (confirmation signatures), signed.
fn sign_confirmation(kp: &Ed25519KeyPair, payment: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(kp.sign(&confirmation_message(payment)).as_ref())
}

/// A device's confirmation asserting its biometric check passed
/// (spec/formats.md: the message followed by `\0biometric`).
fn sign_biometric_confirmation(kp: &Ed25519KeyPair, payment: &serde_json::Value) -> String {
    let mut msg = confirmation_message(payment);
    msg.extend_from_slice(b"\0biometric");
    URL_SAFE_NO_PAD.encode(kp.sign(&msg).as_ref())
}

fn confirmation_message(payment: &serde_json::Value) -> Vec<u8> {
    format!(
        "qrgate-confirm-v1\0{}\0{}\0{}\0{}",
        payment["id"].as_str().unwrap_or_default(),
        payment["amount"].as_str().unwrap_or_default(),
        payment["currency"].as_str().unwrap_or("CNY"),
        payment["merchant_id"].as_str().unwrap_or_default(),
    )
    .into_bytes()
}

/// Charge a device-signed token; when the gateway asks for PIN + certificate,
/// confirm with both. Any other answer is returned as it came.
async fn pay_at_a(
    c: &mut Ctx,
    mk: &str,
    a: &LevelA,
    amount: &str,
) -> Result<crate::client::Resp, Stop> {
    let token = signed_token(&a.device, &a.device_ids)?;
    let r = c.charge(mk, &token, amount).await?;
    if r.status != 201 || r.json["status"] != "requires_action" {
        return Ok(r);
    }
    check(
        r.json["next_action"]["elements"] == json!(["pin", "digital_certificate"]),
        "next_action names the PIN and the certificate",
        r.body.clone(),
    )?;
    let id = field(&r, "id")?.to_owned();
    let sig = sign_confirmation(&a.certificate, &r.json);
    c.post_money(
        &format!("/v1/payments/{id}/confirm"),
        &a.key,
        json!({ "pin": "493817", "certificate_id": a.certificate_id, "certificate_signature": sig }),
    )
    .await
}

async fn limit_a(c: &mut Ctx) -> Outcome {
    separate_caps_only(c).await?;
    let (_, mk) = c.merchant().await?;
    let a = level_a_customer(c, "20000.00", "III", "11000.00").await?;
    for _ in 0..2 {
        let r = pay_at_a(c, &mk, &a, "5500.00").await?;
        expect(&r, 200, None)?;
        check(
            r.json["status"] == "succeeded" && r.json["risk_level"] == "A",
            "5,500.00 succeeded at level A",
            r.body.clone(),
        )?;
    }
    // 11,000.00 used, the agreed cap exactly; B cannot take 5,000.01 either.
    let r = pay_at_a(c, &mk, &a, "5000.01").await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    check(
        r.rule() == "BCP-LIMIT-A-DAILY",
        "rule BCP-LIMIT-A-DAILY cited",
        r.rule().to_owned(),
    )?;
    check(
        c.balance(&a.key).await? == "9000.00",
        "11,000.00 charged in total",
        "another balance",
    )
}

/// A yearly class cap, reached in one A-level payment; a fen more refused.
async fn class_cap(c: &mut Ctx, class: &str, cap: &str, rule: &str) -> Outcome {
    let (_, mk) = c.merchant().await?;
    let a = level_a_customer(c, "250000.00", class, "250000.00").await?;
    let r = pay_at_a(c, &mk, &a, cap).await?;
    expect(&r, 200, None)?;
    check(
        r.json["status"] == "succeeded" && r.json["risk_level"] == "A",
        format!("{cap} succeeded at level A"),
        r.body.clone(),
    )?;
    let r = pay_at_a(c, &mk, &a, "0.01").await?;
    expect(&r, 402, Some("limit_exceeded"))?;
    check(
        r.rule() == rule,
        format!("rule {rule} cited"),
        r.rule().to_owned(),
    )
}

async fn class_two(c: &mut Ctx) -> Outcome {
    separate_caps_only(c).await?;
    class_cap(c, "II", "100000.00", "BCP-ACCT-CLASS-II").await
}

async fn class_three(c: &mut Ctx) -> Outcome {
    separate_caps_only(c).await?;
    class_cap(c, "III", "200000.00", "BCP-ACCT-CLASS-III").await
}

async fn limit_b(c: &mut Ctx) -> Outcome {
    separate_caps_only(c).await?;
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("7000.00", "II").await?;
    set_pin(c, &ck).await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, "1000.00").await?, 201, None)?;
    let kp = device()?;
    let d = enroll(c, &ck, &kp).await?;
    for (amount, ok) in [("4999.99", true), ("0.01", true), ("0.01", false)] {
        let r = pay_stepped_up(c, &mk, &ck, &kp, &d, amount).await?;
        if ok {
            check(
                r.status < 300 && r.json["risk_level"] == "B",
                format!("{amount} accepted at level B"),
                r.body.clone(),
            )?;
        } else {
            expect(&r, 402, Some("limit_exceeded"))?;
            check(
                r.rule() == "BCP-LIMIT-B-DAILY",
                "rule BCP-LIMIT-B-DAILY cited",
                r.rule().to_owned(),
            )?;
        }
    }
    check(
        c.balance(&ck).await? == "1000.00",
        "6,000.00 charged in total",
        "another balance",
    )
}

/// The effective number of a rule, as the target states it (`GET /v1/rules`).
/// A rule's effective number as the target states it: `Ok(None)` when the
/// target lists the rule without one (an optional limit left off).
async fn stated(c: &mut Ctx, id: &str) -> Result<Option<i64>, Stop> {
    let r = c.call("GET", "/v1/rules", None, None, None).await?;
    expect(&r, 200, None)?;
    let rule = r.json["data"]
        .as_array()
        .and_then(|rules| rules.iter().find(|x| x["id"] == id))
        .ok_or_else(|| fail(format!("{id} in GET /v1/rules"), r.body.clone()))?;
    Ok(rule["value"].as_i64())
}

async fn rule_value(c: &mut Ctx, id: &str) -> Result<i64, Stop> {
    stated(c, id)
        .await?
        .ok_or_else(|| fail(format!("{id} with a value in GET /v1/rules"), "no value"))
}

/// Minor units as a decimal amount string.
fn cny(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// Link a sandbox test card; SKIP when the target's processor does not take it.
async fn link_card(c: &mut Ctx, ck: &str, number: &str) -> Result<String, Stop> {
    let r = c
        .call(
            "POST",
            "/v1/me/cards",
            Some(ck),
            Some(json!({ "number": number, "exp_month": 12, "exp_year": 2099 })),
            None,
        )
        .await?;
    if r.status == 422 && r.code() == "card_not_supported" {
        return Err(Stop::Skip(format!(
            "the target's card processor does not take the sandbox test card {number}"
        )));
    }
    expect(&r, 201, None)?;
    Ok(field(&r, "id")?.to_owned())
}

/// The consumer pays a new order of the merchant from a funding source.
async fn pay_order_from(
    c: &mut Ctx,
    mk: &str,
    ck: &str,
    amount: &str,
    source: &str,
) -> Result<crate::client::Resp, Stop> {
    let payload = order_code(c, mk, amount).await?;
    c.post_money(
        "/v1/scans",
        ck,
        json!({ "payload": payload, "funding_source": source }),
    )
    .await
}

fn cites(r: &crate::client::Resp, rule: &str) -> Outcome {
    check(
        r.rule() == rule,
        format!("rule {rule} cited"),
        r.rule().to_owned(),
    )
}

async fn small_credit_day(c: &mut Ctx) -> Outcome {
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

async fn small_credit_month(c: &mut Ctx) -> Outcome {
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
async fn optional_rule(c: &mut Ctx, id: &str) -> Result<i64, Stop> {
    stated(c, id).await?.ok_or_else(|| {
        Stop::Skip(format!(
            "{id} is an optional limit and the target leaves it off"
        ))
    })
}

async fn password_free_count(c: &mut Ctx) -> Outcome {
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

async fn txn_cap(c: &mut Ctx) -> Outcome {
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

async fn velocity(c: &mut Ctx) -> Outcome {
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

async fn mpm_risk_prompt(c: &mut Ctx) -> Outcome {
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

async fn retention(c: &mut Ctx) -> Outcome {
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
async fn flagged(c: &mut Ctx, payment: &str, rule: &str, decision: &str) -> Outcome {
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

async fn anomaly_amount(c: &mut Ctx) -> Outcome {
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

async fn personal_code_payers(c: &mut Ctx) -> Outcome {
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

async fn cancel_window(c: &mut Ctx) -> Outcome {
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
const REFUND_WAIT_S: i64 = 20;

async fn refund_window(c: &mut Ctx) -> Outcome {
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
const STEPUP_WAIT_MS: i64 = 20_000;

/// A customer with a PIN whose level-C cap is used up, and a payment of
/// 10.00 waiting for step-up: (consumer key, the payment, its created_at).
async fn waiting_payment(c: &mut Ctx) -> Result<(String, crate::client::Resp, Timestamp), Stop> {
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

async fn stepup_ttl(c: &mut Ctx) -> Outcome {
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

async fn pin_lock_minutes(c: &mut Ctx) -> Outcome {
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

async fn block(c: &mut Ctx, subject: &str) -> Result<String, Stop> {
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

async fn blocklist(c: &mut Ctx) -> Outcome {
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

async fn class_one(c: &mut Ctx) -> Outcome {
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

async fn stepup(c: &mut Ctx) -> Outcome {
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
fn totp_now(secret: &str) -> Result<String, Stop> {
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
async fn c_cap_used(c: &mut Ctx) -> Result<(String, String), Stop> {
    let (_, mk) = c.merchant().await?;
    let (_, ck) = c.customer("2000.00", "II").await?;
    set_pin(c, &ck).await?;
    let (code, _) = c.payment_code(&ck).await?;
    expect(&c.charge(&mk, &code, "1000.00").await?, 201, None)?;
    Ok((mk, ck))
}

/// An order of 10.00 the consumer pays, answered requires_action.
async fn waiting_order(c: &mut Ctx, mk: &str, ck: &str) -> Result<crate::client::Resp, Stop> {
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

async fn stepup_otp(c: &mut Ctx) -> Outcome {
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

async fn stepup_biometric(c: &mut Ctx) -> Outcome {
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

async fn pin_lockout(c: &mut Ctx) -> Outcome {
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

async fn refund_cap(c: &mut Ctx) -> Outcome {
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

async fn refund_idempotent(c: &mut Ctx) -> Outcome {
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

async fn refund_original(c: &mut Ctx) -> Outcome {
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

async fn confirm_race(c: &mut Ctx) -> Outcome {
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

async fn pin_change(c: &mut Ctx) -> Outcome {
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

async fn device_revoke(c: &mut Ctx) -> Outcome {
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

async fn webhook_targets(c: &mut Ctx) -> Outcome {
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

async fn cancel_refund_race(c: &mut Ctx) -> Outcome {
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

async fn refund_count(c: &mut Ctx) -> Outcome {
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

async fn order_ttl(c: &mut Ctx) -> Outcome {
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

async fn idem_replay(c: &mut Ctx) -> Outcome {
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

async fn idem_reuse(c: &mut Ctx) -> Outcome {
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

async fn auth_no_key(c: &mut Ctx) -> Outcome {
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

async fn auth_wrong_role(c: &mut Ctx) -> Outcome {
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

async fn auth_revoked(c: &mut Ctx) -> Outcome {
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

async fn tenancy(c: &mut Ctx) -> Outcome {
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

async fn input_amount(c: &mut Ctx) -> Outcome {
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

async fn input_currency(c: &mut Ctx) -> Outcome {
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

async fn input_body(c: &mut Ctx) -> Outcome {
    let admin = c.admin.clone();
    let big = json!({ "name": "x".repeat(200_000), "city": "C", "mcc": "5812" }).to_string();
    // A server may answer early and close the connection while the client is
    // still sending: that refuses the body too, if the server is still up.
    let big_req = Req {
        method: "POST",
        path: "/v1/merchants".into(),
        key: Some(&admin),
        body: Some(big),
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
            body: Some("name=A".into()),
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

async fn ledger_balanced(c: &mut Ctx) -> Outcome {
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

async fn audit_chain(c: &mut Ctx) -> Outcome {
    let r = c.as_admin("GET", "/v1/audit/verify", None).await?;
    expect(&r, 200, None)?;
    check(
        r.json.get("Intact").is_some(),
        "the chain intact",
        r.body.clone(),
    )
}

/// A loopback HTTP receiver: records (Qrgate-Signature, body) of each POST.
async fn receiver() -> Result<
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
fn signature_ok(secret: &str, header: &str, body: &str) -> Result<(), String> {
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

async fn webhook_signed(c: &mut Ctx) -> Outcome {
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
