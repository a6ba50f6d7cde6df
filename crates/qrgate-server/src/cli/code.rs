//! `qrgate code …`: decode, render, scan and build payloads without a server.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use qrgate_codes::emv::{self, MpmPayload, PointOfInitiation, Template};
use qrgate_codes::image::{Correction, RenderOptions, render_png, render_svg, scan};
use qrgate_core::{Currency, Money};

/// Exit status when the payload is invalid or an input cannot be used.
const EXIT_INVALID: u8 = 1;
/// Exit status when `--profile emvco` found departures.
const EXIT_FINDINGS: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum CodeCommand {
    /// Parse an EMV merchant-presented payload and print it as JSON.
    ///
    /// Prints every top-level field and every sub-field of templates
    /// (26-51, 62, 64, 80-99) in payload order, the CRC verdict, and with
    /// --profile emvco the departures from EMVCo MPM ("findings").
    ///
    /// Exit status: 0 valid; 1 invalid (the error names the tag and character
    /// offset); 3 valid but with --profile findings; 2 usage error.
    Decode {
        /// The payload text, or "-" to read it from standard input.
        payload: String,
        /// Also check the payload against a profile and fail on departures.
        #[arg(long, value_enum)]
        profile: Option<Profile>,
    },
    /// Render any payload to a QR image (PNG or SVG, chosen by the file extension).
    ///
    /// Defaults: error-correction level M, 8 pixels per module (PNG), quiet
    /// zone of 4 modules.
    Render {
        /// The payload text, or "-" to read it from standard input.
        payload: String,
        /// Output file ending in .png or .svg.
        #[arg(long, short)]
        out: PathBuf,
        /// Error-correction level.
        #[arg(long, value_enum, default_value = "m")]
        ec: Ec,
        /// Pixels per module (PNG only), 1 to 64.
        #[arg(long, default_value_t = 8)]
        module_px: u32,
        /// Quiet zone in modules, 0 to 16 (4 is the minimum scanners expect).
        #[arg(long, default_value_t = 4)]
        quiet_zone: u32,
    },
    /// Find and decode QR codes in a PNG or JPEG image (photo or screenshot).
    ///
    /// Prints each payload on its own line, or with --json an array with
    /// each payload, its QR version, corners and (for EMV payloads) the
    /// parsed fields. Exit status 1 when no code is found.
    Scan {
        image: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Build an unsigned EMV merchant-presented payload and print it.
    ///
    /// Static (point of initiation 11) without --amount, dynamic (12) with it.
    /// Signed qrgate codes come from the gateway (`POST /v1/static-codes`).
    Mpm(MpmArgs),
    /// Make an Ed25519 device key like a consumer app does: writes the seed
    /// (base64url, mode 0600) and prints the public key for POST /v1/devices.
    DeviceKey {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a consumer payment token offline with a device key (what a
    /// consumer app shows as its payment QR code); prints `QRG:…`.
    SignToken {
        /// The seed file written by `qrgate code device-key`.
        #[arg(long)]
        seed_file: PathBuf,
        /// One of the sealed handles POST /v1/devices (or
        /// POST /v1/devices/{id}/handles) gave the device; use a fresh one
        /// for each code, so merchants cannot link them.
        #[arg(long)]
        handle: String,
        /// Validity in seconds, 1 to 60.
        #[arg(long, default_value_t = 60)]
        ttl: u8,
    },
    /// Sign a step-up confirmation with a device or certificate key: prints
    /// the base64url Ed25519 signature for `device_signature` or
    /// `certificate_signature` of POST /v1/payments/{id}/confirm.
    SignConfirmation {
        /// The seed file written by `qrgate code device-key`.
        #[arg(long)]
        seed_file: PathBuf,
        /// The payment as the gateway returned it (JSON with id, amount,
        /// currency, merchant_id).
        #[arg(long)]
        payment: String,
        /// Assert that the device's biometric check (fingerprint, face)
        /// passed: sign for `"biometric": true` in the confirmation.
        #[arg(long)]
        biometric: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Profile {
    /// EMVCo Merchant-Presented Mode: mandatory fields, formats, 512-character limit.
    Emvco,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Ec {
    L,
    M,
    Q,
    H,
}

#[derive(Debug, Args)]
pub struct MpmArgs {
    /// Merchant name (tag 59), at most 25 characters.
    #[arg(long)]
    name: String,
    /// Merchant city (tag 60), at most 15 characters.
    #[arg(long)]
    city: String,
    /// Merchant category code (tag 52), four digits, e.g. 5812 for restaurants.
    #[arg(long)]
    mcc: String,
    /// ISO 4217 alphabetic currency, e.g. CNY (written as its numeric code in tag 53).
    #[arg(long, default_value = "CNY")]
    currency: String,
    /// ISO 3166-1 alpha-2 country (tag 58).
    #[arg(long, default_value = "CN")]
    country: String,
    /// Amount in major units as a decimal string, e.g. 12.30; makes the code dynamic.
    #[arg(long)]
    amount: Option<String>,
    /// Globally unique identifier of the merchant account template (26.00).
    #[arg(long, default_value = "io.qrgate")]
    gui: String,
    /// Merchant account id inside the template (26.01).
    #[arg(long)]
    account: Option<String>,
    /// Order or bill reference (62.05), at most 25 characters.
    #[arg(long)]
    reference: Option<String>,
    /// Postal code (tag 61).
    #[arg(long)]
    postal_code: Option<String>,
}

fn read_payload(arg: &str) -> Result<String, String> {
    if arg != "-" {
        return Ok(arg.to_owned());
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    // A trailing newline from `echo` is not part of the payload.
    Ok(s.trim_end_matches(['\n', '\r']).to_owned())
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_INVALID)
}

fn print_json(v: &Value) {
    use std::io::Write;
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_default()
    );
}

fn fields_json(fields: &[emv::Field]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|f| {
                let mut o = json!({ "tag": f.tag.to_string(), "length": f.value.chars().count(), "value": f.value, "offset": f.offset });
                if let Some(subs) = &f.subfields {
                    o["subfields"] = fields_json(subs);
                }
                o
            })
            .collect(),
    )
}

/// The JSON a decoded payload prints as.
pub fn payload_json(p: &emv::Payload, profile: Option<Profile>) -> Value {
    let crc = format!("{:04X}", p.crc());
    let mut v = json!({
        "valid": true,
        "length": p.char_len(),
        "crc": { "declared": p.value(63), "computed": crc, "valid": true },
        "fields": fields_json(p.fields()),
    });
    if profile.is_some() {
        v["profile"] = json!("emvco");
        v["findings"] = serde_json::to_value(emv::check_emvco(p)).unwrap_or(Value::Null);
    }
    v
}

pub fn run(cmd: CodeCommand) -> ExitCode {
    match cmd {
        CodeCommand::Decode { payload, profile } => decode(&payload, profile),
        CodeCommand::Render {
            payload,
            out,
            ec,
            module_px,
            quiet_zone,
        } => render(&payload, &out, ec, module_px, quiet_zone),
        CodeCommand::Scan { image, json } => scan_image(&image, json),
        CodeCommand::DeviceKey { out } => match device_key(&out) {
            Ok(public) => {
                println!("{public}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        CodeCommand::SignToken {
            seed_file,
            handle,
            ttl,
        } => match sign_token(&seed_file, &handle, ttl) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        CodeCommand::SignConfirmation {
            seed_file,
            payment,
            biometric,
        } => match sign_confirmation(&seed_file, &payment, biometric) {
            Ok(sig) => {
                println!("{sig}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        CodeCommand::Mpm(a) => match build_mpm(a) {
            Ok(p) => {
                println!("{p}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}

/// `code decode`: the payload's fields (and findings), exit 2 when the
/// profile has findings.
fn decode(payload: &str, profile: Option<Profile>) -> ExitCode {
    let payload = match read_payload(payload) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    match emv::parse(&payload) {
        Ok(p) => {
            let v = payload_json(&p, profile);
            print_json(&v);
            let findings = v["findings"].as_array().is_some_and(|a| !a.is_empty());
            if findings {
                ExitCode::from(EXIT_FINDINGS)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            print_json(&json!({
                "valid": false,
                "error": { "code": e.kind.code(), "message": e.to_string(), "tag": e.tag, "offset": e.offset }
            }));
            fail(e)
        }
    }
}

/// `code render`: the payload as a PNG or SVG file.
fn render(payload: &str, out: &Path, ec: Ec, module_px: u32, quiet_zone: u32) -> ExitCode {
    let payload = match read_payload(payload) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let opts = RenderOptions {
        correction: match ec {
            Ec::L => Correction::L,
            Ec::M => Correction::M,
            Ec::Q => Correction::Q,
            Ec::H => Correction::H,
        },
        module_px,
        quiet_zone,
    };
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("png") => render_png(&payload, &opts),
        Some("svg") => render_svg(&payload, &opts).map(String::into_bytes),
        _ => {
            return fail(format!(
                "{}: the output file must end in .png or .svg",
                out.display()
            ));
        }
    };
    match bytes {
        Ok(b) => match std::fs::write(out, b) {
            Ok(()) => {
                eprintln!("wrote {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("cannot write {}: {e}", out.display())),
        },
        Err(e) => fail(e),
    }
}

/// `code scan`: the codes found in an image, as payloads or JSON.
fn scan_image(image: &Path, json: bool) -> ExitCode {
    let bytes = match std::fs::read(image) {
        Ok(b) => b,
        Err(e) => return fail(format!("cannot read {}: {e}", image.display())),
    };
    match scan(&bytes) {
        Ok(found) => {
            if json {
                let items: Vec<Value> = found
                    .iter()
                    .map(|s| {
                        let mut o = json!({ "payload": s.payload, "version": s.version, "corners": s.corners });
                        o["emv"] = match emv::parse(&s.payload) {
                            Ok(p) => payload_json(&p, Some(Profile::Emvco)),
                            Err(e) => json!({ "valid": false, "error": { "code": e.kind.code(), "message": e.to_string() } }),
                        };
                        o
                    })
                    .collect();
                print_json(&Value::Array(items));
            } else {
                for s in &found {
                    println!("{}", s.payload);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{}: {e}", image.display())),
    }
}

fn build_mpm(a: MpmArgs) -> Result<String, String> {
    let currency = Currency::from_code(&a.currency).map_err(|e| e.to_string())?;
    let amount = a
        .amount
        .as_deref()
        .map(|s| Money::parse_amount(s, currency).map_err(|e| format!("--amount: {e}")))
        .transpose()?;
    let mut account = vec![(0, a.gui)];
    if let Some(id) = a.account {
        account.push((1, id));
    }
    let m = MpmPayload {
        point_of_initiation: if amount.is_some() {
            PointOfInitiation::Dynamic
        } else {
            PointOfInitiation::Static
        },
        merchant_accounts: vec![Template {
            id: 26,
            subfields: account,
        }],
        mcc: a.mcc,
        currency,
        amount,
        country: a.country,
        merchant_name: a.name,
        merchant_city: a.city,
        postal_code: a.postal_code,
        additional_data: a.reference.map(|r| vec![(5, r)]).unwrap_or_default(),
        language: None,
        unreserved: vec![],
    };
    m.encode().map_err(|e| e.to_string())
}

fn device_key(out: &std::path::Path) -> Result<String, String> {
    use base64::Engine;
    use ring::signature::KeyPair;
    let kp = qrgate_codes::keyring::seed_file::create(out)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kp.public_key().as_ref()))
}

fn sign_confirmation(
    seed_file: &std::path::Path,
    payment: &str,
    biometric: bool,
) -> Result<String, String> {
    use base64::Engine;
    let kp = qrgate_codes::keyring::seed_file::load(seed_file)?;
    let p: serde_json::Value = serde_json::from_str(payment)
        .map_err(|e| format!("--payment is not the payment's JSON: {e}"))?;
    let field = |name: &str| {
        p[name].as_str().ok_or_else(|| {
            format!("--payment has no {name:?} string (pass the JSON the gateway answered)")
        })
    };
    let mut msg = qrgate_gateway::stepup::confirmation_message(
        field("id")?,
        field("amount")?,
        field("currency")?,
        field("merchant_id")?,
    );
    if biometric {
        msg.extend_from_slice(qrgate_gateway::stepup::BIOMETRIC_SUFFIX);
    }
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kp.sign(&msg).as_ref()))
}

fn sign_token(seed_file: &std::path::Path, handle: &str, ttl: u8) -> Result<String, String> {
    let kp = qrgate_codes::keyring::seed_file::load(seed_file)?;
    let sealed: qrgate_codes::handle::SealedHandle = handle
        .parse()
        .map_err(|e: qrgate_codes::handle::HandleTextError| e.to_string())?;
    let now = qrgate_core::Clock::now(&qrgate_core::SystemClock);
    let claims = qrgate_codes::cpm::TokenClaims::new(
        qrgate_codes::cpm::Holder::Device { sealed },
        now,
        ttl,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| e.to_string())?;
    Ok(claims.sign_with(&kp))
}
