//! The daily-statement benchmark: one merchant with N payments in one
//! business day, and its trade and fund-flow bills read through the
//! gateway as `GET /v1/statements/…` reads them (a digest pass, then the
//! body, a page of rows at a time).
//!
//! Two steps, two processes, so the reader's peak memory is its own:
//!
//! ```text
//! qrgate-statement-bench seed --db /tmp/stmt.db --payments 1000000
//! qrgate-statement-bench read --db /tmp/stmt.db
//! ```
//!
//! `seed` writes the payments through the store's movement path (each one
//! a payment row and its three-line posting: card clearing, the merchant's
//! pending account net of the fee, the fee account), bypassing the payment
//! rules so that a million fit in one day of one merchant. `read` prints
//! rows, bytes, seconds and the process's peak resident memory (VmHWM).

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use qrgate_core::day::BusinessDay;
use qrgate_core::payment::PaymentDetails;
use qrgate_core::state::PaymentStatus;
use qrgate_core::{AccountId, Clock, Currency, ManualClock, Timestamp};
use qrgate_gateway::money::StatementKind;
use qrgate_gateway::parties::NewMerchant;
use qrgate_gateway::{Config, Gateway, Principal, Role};
use qrgate_store::{
    Account, AnyStore, MoneyStore, Movement, Payment, PaymentWrite, Posting, Record, Store,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The day the payments are made in (Asia/Shanghai).
const DAY: &str = "2026-11-25";
const OFFSET: i32 = 480;

#[derive(Parser)]
#[command(name = "qrgate-statement-bench")]
struct Args {
    #[command(subcommand)]
    step: Step,
}

#[derive(Subcommand)]
enum Step {
    /// Make a store with one merchant and N payments in one day.
    Seed {
        /// The SQLite file (made new) or a postgres:// URL.
        #[arg(long)]
        db: String,
        #[arg(long, default_value_t = 1_000_000)]
        payments: u32,
        /// Movements written at once (the store commits them in groups).
        #[arg(long, default_value_t = 64)]
        concurrency: u32,
    },
    /// Read the day's trade and fund-flow bills; print the figures.
    Read {
        #[arg(long)]
        db: String,
    },
}

fn admin() -> Principal {
    Principal {
        key_id: "bench".into(),
        role: Role::Admin,
        subject: None,
    }
}

async fn gateway(db: &str, at: Timestamp) -> Result<Gateway<AnyStore>, String> {
    let (store, _) = AnyStore::open(db, at).await.map_err(|e| e.to_string())?;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at));
    let (gw, _) = Gateway::start(store, clock, Config::default())
        .await
        .map_err(|e| e.message)?;
    Ok(gw)
}

fn day() -> Result<BusinessDay, String> {
    BusinessDay::parse(DAY).map_err(|e| e.to_string())
}

async fn seed(db: &str, payments: u32, concurrency: u32) -> Result<(), String> {
    let start = day()?.starts_at(OFFSET);
    let gw = gateway(db, start).await?;
    let m = gw
        .create_merchant(
            &admin(),
            NewMerchant::regular("BENCH NOODLES", "SHANGHAI", "5812"),
        )
        .await
        .map_err(|e| e.message)?;
    let store = gw.store().clone();
    let clearing = AccountId::card_clearing("sandbox", Currency::CNY);
    store
        .insert(Record::Account(Account {
            id: clearing.clone(),
            kind: "external_clearing".into(),
            owner_id: None,
            currency: Currency::CNY,
            allow_negative: true,
            balance_minor: 0,
            created_at: start,
            closed_until: None,
        }))
        .await
        .map_err(|e| e.to_string())?;
    let pending = AccountId::settlement(&m.id, Currency::CNY);
    let details: PaymentDetails = serde_json::from_value(serde_json::json!({
        "mode": "cpm", "risk_level": "C", "funding_account": clearing.as_str(),
        "funding": {"type": "wallet"}, "settlement_account": pending.as_str(),
    }))
    .map_err(|e| e.to_string())?;
    let template = Arc::new((m.id.clone(), clearing, pending, details));
    let began = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (store, template) = (store.clone(), template.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < payments {
                store
                    .apply(payment(&template, start, i))
                    .await
                    .map_err(|e| e.to_string())?;
                i += concurrency;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let ms = began.elapsed().as_millis().max(1);
    println!(
        "{}",
        serde_json::json!({
            "seeded_payments": payments, "merchant_id": m.id, "seconds": seconds(ms),
            "per_second": u128::from(payments) * 1000 / ms,
        })
    );
    Ok(())
}

/// Payment `i`: 1.00 to 100.99, 0.6% fee, one every 50 ms from the day's
/// start (a million fill about 14 hours).
fn payment(
    t: &(String, AccountId, AccountId, PaymentDetails),
    start: Timestamp,
    i: u32,
) -> Movement {
    let (merchant, clearing, pending, details) = t;
    let at = start.checked_add_millis(i64::from(i) * 50).unwrap_or(start);
    let amount = 100 + i64::from(i % 10_000);
    let fee = (amount * 60 + 5_000) / 10_000;
    let id = format!("pay_bench{i:010}");
    let mut m = Movement::new(at);
    m.posting = Some(
        Posting::lines(
            format!("pst_{id}"),
            "payment",
            Some(&id),
            Currency::CNY,
            vec![
                (clearing.clone(), -amount),
                (pending.clone(), amount - fee),
                (AccountId::fees(merchant, Currency::CNY), fee),
            ],
        )
        .for_merchant(merchant),
    );
    m.payment = Some(PaymentWrite::Insert(Payment {
        id,
        merchant_id: merchant.clone(),
        customer_id: None,
        status: PaymentStatus::Succeeded,
        amount_minor: amount,
        currency: Currency::CNY,
        refunded_minor: 0,
        out_trade_no: Some(format!("T{i}")),
        fee_minor: fee,
        details: details.clone(),
        created_at: at,
        updated_at: at,
    }));
    m
}

async fn read(db: &str) -> Result<(), String> {
    let after = day()?.ends_at(OFFSET);
    let gw = gateway(db, after).await?;
    let merchant = gw
        .store()
        .merchant_ids(None, 1)
        .await
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or("the store has no merchant: seed it first")?;
    let mut out = serde_json::Map::new();
    for (name, kind) in [
        ("trades", StatementKind::Trades),
        ("funds", StatementKind::Funds),
    ] {
        let began = Instant::now();
        let (_, mut reader) = gw
            .statement(&admin(), Some(&merchant), DAY, kind)
            .await
            .map_err(|e| e.message)?;
        let digest_ms = began.elapsed().as_millis();
        let (mut bytes, mut lines, mut last) = (0_usize, 0_usize, String::new());
        while let Some(chunk) = reader.next_chunk(&gw).await.map_err(|e| e.message)? {
            bytes += chunk.len();
            lines += chunk.lines().count();
            if let Some(l) = chunk.lines().last() {
                last = l.to_owned();
            }
        }
        let ms = began.elapsed().as_millis();
        out.insert(
            name.into(),
            serde_json::json!({
                "lines": lines, "bytes": bytes, "digest_pass_seconds": seconds(digest_ms),
                "total_seconds": seconds(ms), "totals": last,
            }),
        );
    }
    out.insert("peak_rss_mb".into(), serde_json::json!(peak_rss_mb()));
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

/// Milliseconds as seconds with one decimal, e.g. `12.3`.
fn seconds(ms: u128) -> String {
    format!("{}.{}", ms / 1000, (ms % 1000) / 100)
}

/// The process's peak resident set (VmHWM), in MiB (Linux).
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let a = Args::parse();
    let done = match a.step {
        Step::Seed {
            db,
            payments,
            concurrency,
        } => seed(&db, payments, concurrency.max(1)).await,
        Step::Read { db } => read(&db).await,
    };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
