//! `qrgate-bench`: drives the real consumer-presented payment flow against a
//! running gateway. It creates its own merchants and customers (funded
//! wallets, enrolled device keys); each worker's consumer signs payment
//! tokens offline with its device key and a merchant charges them with
//! `POST /v1/payments` and an Idempotency-Key. Closed loop by default, or
//! open loop at `--rate` payments per second (latency then counts from the
//! scheduled start, so a slow server cannot hide queueing). Afterwards it
//! checks through the auditor API that the ledger balances and that the
//! ledger grew by exactly the payments it counted.
//!
//! The last line it prints is exactly:
//! `payments_per_s=<n> p50_ms=<n> p99_ms=<n> p999_ms=<n> errors=<n>`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use ring::rand::SystemRandom;
use serde_json::Value;

use qrgate_bench::{Consumer, Target, charge};

/// The same allocator as the gateway, so the load generator takes as little
/// of the shared cores as it can.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load generator for qrgate payments.
#[derive(Parser, Clone)]
#[command(name = "qrgate-bench", version)]
struct Args {
    /// Base URL of the gateway.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// An admin API key of the gateway.
    #[arg(long, env = "QRGATE_ADMIN_KEY")]
    admin_key: String,
    /// Seconds of load after setup.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Concurrent workers (closed loop) or connections (open loop).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Open loop: offered payments per second across all workers.
    #[arg(long)]
    rate: Option<u64>,
    /// Merchants to spread the payments over.
    #[arg(long, default_value_t = 8)]
    merchants: usize,
}

struct Worker {
    merchant_key: String,
    consumer: Consumer,
}

/// Merchants with keys, and one funded customer with an enrolled device per worker.
async fn setup(t: &Target, a: &Args) -> Result<Vec<Worker>, String> {
    let mut merchant_keys = Vec::new();
    for i in 0..a.merchants.max(1) {
        merchant_keys.push(t.merchant(&format!("BENCH SHOP {i}")).await?.1);
    }
    let mut workers = Vec::new();
    for i in 0..a.concurrency.max(1) {
        workers.push(Worker {
            merchant_key: merchant_keys[i % merchant_keys.len()].clone(),
            consumer: t.consumer("III", "10000.00").await?,
        });
    }
    Ok(workers)
}

struct Totals {
    ok: AtomicU64,
    errors: AtomicU64,
}

/// One payment: sign a token offline, the merchant charges it.
async fn pay(t: &Target, w: &Worker, rng: &SystemRandom, seq: u64) -> Result<bool, String> {
    let token = w.consumer.token(rng)?;
    let idem = format!("bench-{}-{seq}", w.consumer.device_id);
    let (status, _) = charge(t, &w.merchant_key, &token, "0.01", &idem).await?;
    Ok(status == 201)
}

async fn load(a: &Args, workers: Vec<Worker>, t: Target) -> (Histogram<u64>, u64, u64, Duration) {
    let totals = Arc::new(Totals {
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let start = Instant::now();
    let end = start + Duration::from_secs(a.duration);
    let per_worker_interval = a
        .rate
        .map(|r| Duration::from_nanos(1_000_000_000 * workers.len() as u64 / r.max(1)));
    let n_workers = u32::try_from(workers.len()).unwrap_or(u32::MAX).max(1);
    let mut tasks = Vec::new();
    for (i, w) in workers.into_iter().enumerate() {
        let (t, totals) = (t.clone(), totals.clone());
        tasks.push(tokio::spawn(async move {
            let rng = SystemRandom::new();
            let mut hist = histogram();
            let mut seq = 0_u64;
            // Open loop: this worker's share of the offered rate, the
            // workers' starts spread evenly over one interval (so the
            // offered load is smooth, not a burst of every worker at once).
            let slot = u32::try_from(i).unwrap_or(0);
            let mut next = per_worker_interval.map(|iv| start + iv * slot / n_workers);
            while Instant::now() < end {
                let scheduled = match (next, per_worker_interval) {
                    (Some(t), Some(iv)) => {
                        tokio::time::sleep_until(t.into()).await;
                        next = Some(t + iv);
                        t
                    }
                    _ => Instant::now(),
                };
                if scheduled >= end {
                    break;
                }
                seq += 1;
                let ok = matches!(pay(&t, &w, &rng, seq).await, Ok(true));
                let micros = u64::try_from(scheduled.elapsed().as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                let _ = hist.record(micros.min(60_000_000));
                if ok {
                    totals.ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    totals.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            hist
        }));
    }
    let mut all = histogram();
    for t in tasks {
        if let Ok(h) = t.await {
            let _ = all.add(&h);
        }
    }
    (
        all,
        totals.ok.load(Ordering::Relaxed),
        totals.errors.load(Ordering::Relaxed),
        start.elapsed(),
    )
}

/// Microseconds from 1 µs to 60 s at 3 significant digits.
fn histogram() -> Histogram<u64> {
    match Histogram::<u64>::new_with_bounds(1, 60_000_000, 3) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: histogram: {e}");
            std::process::exit(2);
        }
    }
}

fn ms(micros: u64) -> String {
    format!("{}.{:03}", micros / 1000, micros % 1000)
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    let t = match Target::new(&a.target, &a.admin_key, a.concurrency) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    eprintln!(
        "setting up {} merchants and {} customers with devices…",
        a.merchants, a.concurrency
    );
    let workers = match setup(&t, &a).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: setup failed: {e}");
            std::process::exit(3);
        }
    };
    let before = match t.get("/v1/ledger/check", &a.admin_key).await {
        Ok((_, v)) => v["check"]["entries"].as_i64().unwrap_or(0),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(3);
        }
    };
    match a.rate {
        Some(r) => eprintln!(
            "open loop: {r} payments/s offered for {} s over {} connections",
            a.duration, a.concurrency
        ),
        None => eprintln!(
            "closed loop: {} workers for {} s",
            a.concurrency, a.duration
        ),
    }
    let (hist, ok, errors, elapsed) = load(&a, workers, t.clone()).await;
    // Let group commits settle, then check the books.
    let check = t
        .get("/v1/ledger/check", &a.admin_key)
        .await
        .map(|(_, v)| v)
        .unwrap_or(Value::Null);
    let after = check["check"]["entries"].as_i64().unwrap_or(0);
    let balanced = check["balanced"] == true;
    let ledger_payments = (after - before) / 2;
    eprintln!(
        "ledger: balanced={balanced}, {ledger_payments} payments posted during the run, {ok} counted by the load generator{}",
        if ledger_payments == i64::try_from(ok).unwrap_or(-1) {
            " (equal)"
        } else {
            " (DIFFERENT)"
        }
    );
    let secs = elapsed.as_millis().max(1);
    let pps = u128::from(ok) * 1000 / secs;
    let mut fail = errors;
    if !balanced || ledger_payments != i64::try_from(ok).unwrap_or(-1) {
        fail += 1;
        eprintln!("error: the books do not match the run");
    }
    println!(
        "payments_per_s={pps} p50_ms={} p99_ms={} p999_ms={} errors={fail}",
        ms(hist.value_at_quantile(0.5)),
        ms(hist.value_at_quantile(0.99)),
        ms(hist.value_at_quantile(0.999))
    );
    if fail > 0 {
        std::process::exit(1);
    }
}
