//! Hot-path pieces of code handling: sign, verify, encode, parse, render, scan.
//! Run: `cargo bench -p qrgate-codes --bench codes`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark fixtures

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use qrgate_codes::cpm::{Holder, TokenClaims, UnverifiedToken};
use qrgate_codes::emv;
use qrgate_codes::handle::SealedHandle;
use qrgate_codes::image::{RenderOptions, render_gray, render_png, scan_gray};
use qrgate_codes::keyring::Keyring;
use qrgate_codes::merchant::{self, MerchantCode, MerchantCodeKind, MerchantDisplay};
use qrgate_core::id::StaticCodeId;
use qrgate_core::{Currency, Timestamp};
use ring::rand::SystemRandom;
use ring::signature::KeyPair;

const EMVCO_SAMPLE: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

fn benches(c: &mut Criterion) {
    let now = Timestamp::from_unix_millis(1_795_000_000_000);
    let rng = SystemRandom::new();
    let ring = Keyring::generate(&rng, now).unwrap();
    let keys = ring.public_keys();
    let code = MerchantCode {
        kind: MerchantCodeKind::Static {
            code_id: StaticCodeId::generate(&rng).unwrap(),
        },
        display: MerchantDisplay {
            name: "OLD STREET NOODLES".into(),
            city: "SHANGHAI".into(),
            country: "CN".into(),
            mcc: "5812".into(),
            currency: Currency::CNY,
            postal_code: None,
            language: None,
        },
    };
    let payload = code.issue(&ring).unwrap();

    c.bench_function("emv_parse_emvco_sample", |b| {
        b.iter(|| emv::parse(black_box(EMVCO_SAMPLE)).unwrap())
    });
    c.bench_function("emv_check_emvco", |b| {
        let p = emv::parse(EMVCO_SAMPLE).unwrap();
        b.iter(|| emv::check_emvco(black_box(&p)))
    });
    c.bench_function("merchant_code_issue_sign", |b| {
        b.iter(|| black_box(&code).issue(&ring).unwrap())
    });
    c.bench_function("merchant_code_verify", |b| {
        b.iter(|| merchant::verify(black_box(&payload), &keys, now).unwrap())
    });

    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let device = ring::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    let public = device.public_key().as_ref().to_vec();
    let sealed = SealedHandle([3; qrgate_codes::handle::SEALED_LEN]);
    let claims = TokenClaims::new(Holder::Device { sealed }, now, 60, &rng).unwrap();
    let token = claims.sign_with(&device);
    c.bench_function("cpm_token_sign", |b| {
        b.iter(|| black_box(&claims).sign_with(&device))
    });
    c.bench_function("cpm_token_decode_verify", |b| {
        b.iter(|| {
            UnverifiedToken::decode(black_box(&token))
                .unwrap()
                .verify(&public, now, 5_000)
                .unwrap()
        })
    });

    let opts = RenderOptions::default();
    c.bench_function("render_png_static_code", |b| {
        b.iter(|| render_png(black_box(&payload), &opts).unwrap())
    });
    let img = render_gray(&payload, &opts).unwrap();
    c.bench_function("scan_rendered_static_code", |b| {
        b.iter(|| scan_gray(black_box(&img)).unwrap())
    });
}

criterion_group! {
    name = codes;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(codes);
