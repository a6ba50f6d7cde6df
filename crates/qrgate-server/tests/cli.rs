//! The `qrgate` binary's commands, run as a user would run them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on broken fixtures

use std::path::PathBuf;
use std::process::{Command, Output};

fn qrgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qrgate"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qrgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Real payloads from other schemes (not produced by this repository).
fn real_payloads() -> Vec<String> {
    include_str!("../../qrgate-codes/tests/data/real_payloads.txt")
        .lines()
        .filter_map(|l| l.strip_prefix("payload: "))
        .map(str::to_owned)
        .collect()
}

const PIX: &str = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D";
const PROMPTPAY: &str =
    "00020101021129370016A000000677010111011300668999999995802TH53037646304FE29";

#[test]
fn decode_prints_fields_and_crc_as_json() {
    let o = qrgate(&["code", "decode", PIX]);
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["crc"]["computed"], "1D3D");
    assert_eq!(v["fields"][1]["tag"], "26");
    assert_eq!(v["fields"][1]["subfields"][0]["value"], "br.gov.bcb.pix");
    assert_eq!(v["fields"][5]["value"], "Fulano de Tal");
    for p in real_payloads() {
        assert!(qrgate(&["code", "decode", &p]).status.success(), "{p}");
    }
}

#[test]
fn decode_refuses_corrupt_payloads_naming_tag_and_offset() {
    let corrupt = PIX.replace("Fulano", "Fulana");
    let o = qrgate(&["code", "decode", &corrupt]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("CRC mismatch") && err.contains("tag 63") && err.contains("offset"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["error"]["code"], "emv_crc_mismatch");

    let o = qrgate(&["code", "decode", &PIX[..PIX.len() - 20]]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("offset"));
}

#[test]
fn profile_findings_make_decode_fail() {
    let o = qrgate(&["code", "decode", PROMPTPAY]);
    assert_eq!(o.status.code(), Some(0));
    let o = qrgate(&["code", "decode", PROMPTPAY, "--profile", "emvco"]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let tags: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["52", "59", "60"]);
    assert_eq!(
        qrgate(&["code", "decode", PIX, "--profile", "emvco"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn mpm_builds_a_payload_that_passes_the_strict_profile() {
    let o = qrgate(&[
        "code",
        "mpm",
        "--name",
        "老街面馆",
        "--city",
        "SHANGHAI",
        "--mcc",
        "5812",
        "--amount",
        "36.50",
        "--reference",
        "T42",
    ]);
    assert!(o.status.success(), "{o:?}");
    let payload = stdout(&o).trim().to_owned();
    assert!(
        payload.contains("010212")
            && payload.contains("540536.50")
            && payload.contains("5904老街面馆")
    );
    assert_eq!(
        qrgate(&["code", "decode", &payload, "--profile", "emvco"])
            .status
            .code(),
        Some(0)
    );
    let bad = qrgate(&[
        "code", "mpm", "--name", "X", "--city", "Y", "--mcc", "5812", "--amount", "1.005",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("decimals"));
}

#[test]
fn render_then_scan_png_and_svg() {
    let png = tmp("pix.png");
    let o = qrgate(&["code", "render", PIX, "--out", png.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let o = qrgate(&["code", "scan", png.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o).trim_end(), PIX);
    let o = qrgate(&["code", "scan", png.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["payload"], PIX);
    assert_eq!(v[0]["emv"]["valid"], true);

    let svg = tmp("pix.svg");
    assert!(
        qrgate(&["code", "render", PIX, "--out", svg.to_str().unwrap()])
            .status
            .success()
    );
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<?xml"));
    let bad = qrgate(&[
        "code",
        "render",
        PIX,
        "--out",
        tmp("pix.gif").to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let missing = qrgate(&["code", "scan", tmp("nope.png").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn scan_reads_images_from_an_independent_encoder() {
    // qrencode (Debian package qrencode) produced these images, not us; .ci/run installs it.
    if Command::new("qrencode").arg("--version").output().is_err() {
        eprintln!("SKIP scan_reads_images_from_an_independent_encoder: qrencode not installed");
        return;
    }
    for (i, p) in real_payloads().iter().enumerate() {
        let path = tmp(&format!("ext{i}.png"));
        let st = Command::new("qrencode")
            .args(["-8", "-s", "5", "-o"])
            .arg(&path)
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
        let o = qrgate(&["code", "scan", path.to_str().unwrap()]);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(stdout(&o).trim_end_matches('\n'), p);
    }
}

/// `qrgate code device-key` into a fresh file: (the seed file, the raw
/// 32-byte public key it printed).
fn new_key(name: &str) -> (PathBuf, Vec<u8>) {
    use base64::Engine;
    let seed = tmp(name);
    let _ = std::fs::remove_file(&seed);
    let o = qrgate(&["code", "device-key", "--out", seed.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let public = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(stdout(&o).trim())
        .unwrap();
    assert_eq!(public.len(), 32);
    (seed, public)
}

#[test]
fn device_key_and_sign_token_make_a_token_the_printed_key_verifies() {
    let rng = ring::rand::SystemRandom::new();
    let (seed, public) = new_key("device.seed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&seed).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "seed file must be private");
    }
    // Never overwrite an existing key.
    let again = qrgate(&["code", "device-key", "--out", seed.to_str().unwrap()]);
    assert!(!again.status.success());

    let handle_key = qrgate_codes::handle::HandleKey::new(&[5; 32]).unwrap();
    let device_id = qrgate_core::id::DeviceId::generate(&rng).unwrap();
    let handle = handle_key
        .seal(*device_id.as_bytes(), &rng)
        .unwrap()
        .to_string();
    let o = qrgate(&[
        "code",
        "sign-token",
        "--seed-file",
        seed.to_str().unwrap(),
        // `=`: a base64url handle may start with `-`.
        &format!("--handle={handle}"),
        "--ttl",
        "30",
    ]);
    assert!(o.status.success(), "{o:?}");
    let token = stdout(&o).trim().to_owned();
    let unverified = qrgate_codes::cpm::UnverifiedToken::decode(&token).unwrap();
    let now = qrgate_core::Clock::now(&qrgate_core::SystemClock);
    let claims = unverified.verify(&public, now, 5_000).unwrap();
    assert_eq!(claims.ttl_seconds, 30);
    assert_eq!(claims.signer(), qrgate_codes::cpm::Signer::Device);
    let qrgate_codes::cpm::Holder::Device { sealed } = claims.holder else {
        panic!("not a device code: {claims:?}");
    };
    assert_eq!(sealed.to_string(), handle);
    assert_eq!(&handle_key.open(&sealed).unwrap(), device_id.as_bytes());

    // A different key does not verify it.
    let (_, other_public) = new_key("other.seed");
    let unverified = qrgate_codes::cpm::UnverifiedToken::decode(&token).unwrap();
    assert!(unverified.verify(&other_public, now, 5_000).is_err());

    // Bad input is refused with a reason.
    for args in [
        ["--handle", "nope", "--ttl", "30"],
        ["--handle", handle.as_str(), "--ttl", "61"],
        ["--handle", handle.as_str(), "--ttl", "0"],
    ] {
        let mut full = vec!["code", "sign-token", "--seed-file", seed.to_str().unwrap()];
        full.extend(args);
        let o = qrgate(&full);
        assert!(!o.status.success(), "{full:?} should fail");
        assert!(!o.stderr.is_empty(), "{full:?} should say why");
    }
}

#[test]
fn sign_confirmation_signs_the_payment_message_with_the_seed_key() {
    use base64::Engine;
    let (seed, public) = new_key("cert.seed");
    let payment = r#"{"id":"pay_agrbhnkzp5b4mo76pultuwfyry","object":"payment","status":"requires_action","amount":"6000.00","currency":"CNY","merchant_id":"mch_agrbhnj4cboofoka6phzmpikvq"}"#;
    let o = qrgate(&[
        "code",
        "sign-confirmation",
        "--seed-file",
        seed.to_str().unwrap(),
        "--payment",
        payment,
    ]);
    assert!(o.status.success(), "{o:?}");
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(stdout(&o).trim())
        .unwrap();
    let msg = qrgate_gateway::stepup::confirmation_message(
        "pay_agrbhnkzp5b4mo76pultuwfyry",
        "6000.00",
        "CNY",
        "mch_agrbhnj4cboofoka6phzmpikvq",
    );
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
        .verify(&msg, &sig)
        .expect("the signature verifies over the confirmation message");
    // Another amount is another message.
    let other = qrgate_gateway::stepup::confirmation_message(
        "pay_agrbhnkzp5b4mo76pultuwfyry",
        "6000.01",
        "CNY",
        "mch_agrbhnj4cboofoka6phzmpikvq",
    );
    assert!(
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
            .verify(&other, &sig)
            .is_err()
    );
    // Not the payment's JSON: refused with a reason.
    let o = qrgate(&[
        "code",
        "sign-confirmation",
        "--seed-file",
        seed.to_str().unwrap(),
        "--payment",
        r#"{"id":"pay_x"}"#,
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("amount"),
        "{o:?}"
    );
}
