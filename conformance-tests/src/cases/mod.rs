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

mod access;
mod codes;
mod complaints;
mod levels;
mod limits;
mod money;
mod risk;
mod stepup;
mod webhooks;

use {
    access::*, codes::*, complaints::*, levels::*, limits::*, money::*, risk::*, stepup::*,
    webhooks::*,
};

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

/// Every case, in the order they run. Long because it is the table of
/// cases (id, rule, level, title, function); the functions live in the
/// sub-modules, one per area.
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
            "QGC-COMPLAINT-INSTANT",
            "QG-COMPLAINT-INSTANT-REFUND",
            Should,
            "a complaint about a 19.99 payment is refunded in the same answer, once, and the wallet shows it",
            complaint_instant
        ),
        case!(
            "QGC-COMPLAINT-TICKET",
            "QG-COMPLAINT-INSTANT-REFUND",
            Should,
            "a complaint about a 20.01 payment opens a ticket for the merchant, whose full refund resolves it",
            complaint_ticket
        ),
        case!(
            "QGC-COMPLAINT-INSTANT-CAP",
            "QG-COMPLAINT-INSTANT-CAP",
            Must,
            "a payer gets at most 3 instant refunds; the 4th small complaint is a ticket",
            complaint_instant_cap
        ),
        case!(
            "QGC-COMPLAINT-INSTANT-CAP-AMOUNT",
            "QG-COMPLAINT-INSTANT-CAP-AMOUNT",
            Must,
            "a payer's instant refunds add up to at most 50.00; the 3rd small complaint of 19.00 is a ticket",
            complaint_instant_cap_amount
        ),
        case!(
            "QGC-COMPLAINT-DEADLINE",
            "QG-COMPLAINT-FIRST-REPLY",
            Must,
            "the merchant's deadline is at most 24 h, and an unanswered complaint escalates by itself after it (observed when the target's deadline is at most 10 s)",
            complaint_deadline
        ),
        case!(
            "QGC-COMPLAINT-PHOTO-SIZE",
            "QG-COMPLAINT-PHOTO-BYTES",
            Must,
            "a complaint photo one byte over the limit is refused with 413 and not stored; one of exactly the limit is stored as sent",
            complaint_photo_size
        ),
        case!(
            "QGC-COMPLAINT-PHOTOS",
            "QG-COMPLAINT-PHOTOS",
            Must,
            "a complaint takes at most the stated number of photos; the same photo again is answered with the stored one",
            complaint_photos
        ),
        case!(
            "QGC-COMPLAINT-TAMPER-SUSPEND",
            "QG-COMPLAINT-TAMPER-REPORTS",
            Must,
            "a static code reported tampered by the stated number of payers is suspended (not before), and scanning it then moves no money",
            complaint_tamper_suspend
        ),
        case!(
            "QGC-COMPLAINT-TENANCY",
            "QG-TENANCY",
            Must,
            "a payer cannot complain about another customer's payment (404); a merchant cannot see another merchant's complaints",
            complaint_tenancy
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
            "QGC-FEE",
            "QG-FEE-ROUNDING",
            Must,
            "each payment's fee is its rate to the fen, refunds give it back in proportion, and the balance follows",
            fees
        ),
        case!(
            "QGC-FEE-DEFAULT",
            "QG-FEE-REGULAR",
            Should,
            "a regular merchant without a rate of its own pays the stated default",
            fee_default_regular
        ),
        case!(
            "QGC-FEE-DEFAULT-SMALL",
            "QG-FEE-SMALL-PERSONAL",
            Should,
            "a small personal merchant without a rate of its own pays its stated default",
            fee_default_small
        ),
        case!(
            "QGC-STATEMENTS",
            "QG-STATEMENTS",
            Must,
            "a day's statements total the payments and refunds made, close at the balance, carry their digest",
            statements
        ),
        case!(
            "QGC-RECONCILIATION",
            "QG-RECONCILIATION",
            Must,
            "card payments, a refund and a cancel made through the API match the processor's settlement file",
            reconciliation
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
