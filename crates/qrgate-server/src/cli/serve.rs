//! `qrgate serve` and the other commands that open the store.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use qrgate_core::seal::{MasterKey, Sealer};
use qrgate_core::{Clock, SystemClock};
use qrgate_gateway::parties::{NewCustomer, NewMerchant};
use qrgate_gateway::{Config, Gateway, Principal, Role};
use qrgate_store::{AnyStore, AuditVerdict, Store};

use crate::http::{AppState, router};

#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Where the data lives: sqlite://PATH (created on first start) or postgres://USER@HOST/DB.
    #[arg(long, env = "QRGATE_DB", default_value = "sqlite://qrgate.db")]
    pub db: String,
    /// The master key that seals secrets at rest (signing keys, webhook and
    /// OTP secrets): a file holding 32 bytes in base64url or hex. `serve`
    /// creates it (mode 0600) beside the admin key file when missing; every
    /// node of one database needs the same key. QRGATE_MASTER_KEY (the key
    /// itself) takes precedence.
    #[arg(long, env = "QRGATE_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// An older master key, read (never written with) while secrets sealed
    /// under it are re-sealed under the current one.
    #[arg(long, env = "QRGATE_PREVIOUS_MASTER_KEY_FILE")]
    pub previous_master_key_file: Option<PathBuf>,
}

/// The master key file when none is named: beside `near` (the admin key
/// file for `serve`), or `qrgate-master.key` in the working directory.
fn master_key_path(store: &StoreArgs, near: Option<&Path>) -> PathBuf {
    store.master_key_file.clone().unwrap_or_else(|| {
        near.and_then(Path::parent).map_or_else(
            || PathBuf::from("qrgate-master.key"),
            |d| d.join("qrgate-master.key"),
        )
    })
}

fn read_key(path: &Path) -> Result<MasterKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the master key {}: {e}", path.display()))?;
    MasterKey::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The sealer for secrets at rest: the current master key (from
/// QRGATE_MASTER_KEY, or the file; created when missing and `create`), and
/// the previous one when named.
fn sealer(store: &StoreArgs, near: Option<&Path>, create: bool) -> Result<Arc<Sealer>, String> {
    let current = match std::env::var("QRGATE_MASTER_KEY") {
        Ok(text) => MasterKey::parse(&text).map_err(|e| format!("QRGATE_MASTER_KEY: {e}"))?,
        Err(_) => {
            let path = master_key_path(store, near);
            if !path.exists() && create {
                let (key, text) = MasterKey::generate(&ring::rand::SystemRandom::new())
                    .map_err(|e| e.to_string())?;
                write_secret(&path, &text)?;
                tracing::warn!(
                    file = %path.display(),
                    key_id = key.id(),
                    "created a master key for secrets at rest: keep it apart from the database's backups; every gateway node of this database needs this same key"
                );
                key
            } else {
                read_key(&path)?
            }
        }
    };
    let older = store
        .previous_master_key_file
        .as_deref()
        .map(read_key)
        .transpose()?
        .into_iter()
        .collect();
    Ok(Arc::new(Sealer::new(current, older)))
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "QRGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// TOML config: rule overrides (`[rules]`), `allow_loosening`, `cancel_window_seconds`, `processor_timeout_ms`, `allow_internal_webhooks`, `allow_local_http_webhooks`.
    #[arg(long, env = "QRGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the first start writes the admin key (mode 0600).
    #[arg(
        long,
        env = "QRGATE_ADMIN_KEY_FILE",
        default_value = "qrgate-admin.key"
    )]
    pub admin_key_file: PathBuf,
    /// Also create a demo merchant, customer (funded wallet) and keys, and print curl commands.
    #[arg(long)]
    pub demo: bool,
    /// Log format: json (default) or text.
    #[arg(long, env = "QRGATE_LOG_FORMAT", default_value = "json")]
    pub log_format: String,
}

pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only on a terminal: a redirected log stays plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if format == "text" {
        builder.try_init()
    } else {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    };
}

fn load_config(path: Option<&Path>) -> Result<Config, String> {
    let mut config: Config = match path {
        None => Config::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    // The sandbox processor's settlement files outlive the process, so
    // `qrgate reconcile` run from the same directory reads them.
    // A directory that cannot be made (a read-only working directory)
    // leaves them in memory, said once; a configured one must work.
    if config.sandbox_journal_dir.is_none() {
        match std::fs::create_dir_all(DEFAULT_SANDBOX_DIR) {
            Ok(()) => config.sandbox_journal_dir = Some(PathBuf::from(DEFAULT_SANDBOX_DIR)),
            Err(e) => eprintln!(
                "warning: cannot make ./{DEFAULT_SANDBOX_DIR} ({e}): the sandbox processor's settlement records stay in memory"
            ),
        }
    }
    Ok(config)
}

/// Where the sandbox processor keeps its journal unless configured.
const DEFAULT_SANDBOX_DIR: &str = "qrgate-sandbox";

pub async fn open(store: &StoreArgs, mut config: Config) -> Result<Gateway<AnyStore>, String> {
    if config.sealer.is_none() {
        config.sealer = Some(sealer(store, None, false)?);
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (s, report) = AnyStore::open(&store.db, clock.now())
        .await
        .map_err(|e| format!("cannot open {}: {e}", qrgate_store::redact_url(&store.db)))?;
    for (v, name) in &report.applied {
        tracing::info!(version = v, name = %name, "migration applied");
    }
    let (gw, applied) = Gateway::start(s, clock, config)
        .await
        .map_err(|e| e.message)?;
    for a in applied {
        if a.loosened {
            tracing::warn!(rule = %a.id, from = ?a.from, to = a.to, "rule LOOSENED by allow_loosening");
        } else {
            tracing::info!(rule = %a.id, from = ?a.from, to = a.to, "rule made stricter by config (from None = was off)");
        }
    }
    Ok(gw)
}

fn write_secret(path: &Path, secret: &str) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    writeln!(f, "{secret}").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

const SYSTEM: fn() -> Principal = || Principal {
    key_id: "system".into(),
    role: Role::Admin,
    subject: None,
};

/// The demo's keys, printed once with the walk-through.
struct DemoKeys {
    merchant_id: String,
    merchant_key: String,
    customer_id: String,
    customer_key: String,
    auditor_key: String,
}

/// `--demo`: a merchant, a funded customer and an auditor, with their
/// keys, then a walk-through that uses them.
async fn demo(gw: &Gateway<AnyStore>, base: &str) -> Result<(), String> {
    let keys = demo_parties(gw).await?;
    print_demo(&keys, base);
    Ok(())
}

async fn demo_parties(gw: &Gateway<AnyStore>) -> Result<DemoKeys, String> {
    let e = |e: qrgate_gateway::Error| e.to_string();
    let admin = SYSTEM();
    let m = gw
        .create_merchant(
            &admin,
            NewMerchant {
                name_local: Some("演示面馆".into()),
                bank_account: Some(qrgate_gateway::money::SANDBOX_PAYS.into()),
                ..NewMerchant::regular("DEMO NOODLES", "SHANGHAI", "5812")
            },
        )
        .await
        .map_err(e)?;
    let mk = gw
        .create_api_key(None, Role::Merchant, Some(m.id.clone()))
        .await
        .map_err(e)?;
    let c = gw
        .create_customer(
            &admin,
            NewCustomer {
                account_class: "II".into(),
                level_a_daily_cap: None,
            },
        )
        .await
        .map_err(e)?;
    gw.topup(&admin, &c.id, "2000.00", None).await.map_err(e)?;
    let ck = gw
        .create_api_key(None, Role::Consumer, Some(c.id.clone()))
        .await
        .map_err(e)?;
    let ak = gw
        .create_api_key(None, Role::Auditor, None)
        .await
        .map_err(e)?;
    Ok(DemoKeys {
        merchant_id: m.id,
        merchant_key: mk.secret,
        customer_id: c.id,
        customer_key: ck.secret,
        auditor_key: ak.secret,
    })
}

/// The walk-through, in bash, with the demo's keys filled in.
fn print_demo(k: &DemoKeys, base: &str) {
    println!(
        r#"
== demo data ==
merchant {mid} key:  {mkey}
customer {cid} (wallet 2000.00 CNY) key:  {ckey}
auditor key:  {akey}

In a browser: {base}/web/ and sign in with a key above:
  merchant key: the console, the cashier ({base}/web/cashier: an amount, then the
    code to scan, which turns green when paid, or the customer's code typed in),
    static codes with a printable poster, complaints, statements and webhooks;
  customer key: the wallet ({base}/web/wallet: the payment code, and paying a
    shop's code from a photo of it);
  auditor key: the ledger, the audit chain and signed conformance reports;
  admin key (qrgate-admin.key): the operator's review queue.

Copy and paste (bash):

  export QG={base} MK={mkey} CK={ckey} AK={akey}

1. Consumer shows a payment code, the cashier charges it (CPM):
  CODE=$(curl -s -X POST $QG/v1/payment-codes -H "Authorization: Bearer $CK" | sed 's/.*"numeric":"\([0-9]*\)".*/\1/')
  curl -s -X POST $QG/v1/payments -H "Authorization: Bearer $MK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: $(date +%s%N)" -d "{{\"auth_code\":\"$CODE\",\"amount\":\"12.30\"}}"

2. Merchant prints a static code; the consumer scans it and enters the amount (MPM, level D):
  SQR=$(curl -s -X POST $QG/v1/static-codes -H "Authorization: Bearer $MK" | sed 's/.*"id":"\(sqr_[a-z0-9]*\)".*/\1/')
  curl -s -o poster.png $QG/v1/static-codes/$SQR.png -H "Authorization: Bearer $MK"
  PAYLOAD=$(curl -s $QG/v1/static-codes/$SQR -H "Authorization: Bearer $MK" | sed 's/.*"payload":"\([^"]*\)".*/\1/')
  curl -s -X POST $QG/v1/codes/verify -H 'Content-Type: application/json' -d "{{\"payload\":\"$PAYLOAD\"}}"
  curl -s -X POST $QG/v1/scans -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: $(date +%s%N)" -d "{{\"payload\":\"$PAYLOAD\",\"amount\":\"8.00\"}}"

3. Merchant shows a dynamic order code; the consumer pays it:
  ORDER=$(curl -s -X POST $QG/v1/orders -H "Authorization: Bearer $MK" -H 'Content-Type: application/json' -d '{{"amount":"36.50","reference":"TABLE-7","metadata":{{"table":"7"}}}}')
  OP=$(echo "$ORDER" | sed 's/.*"payload":"\([^"]*\)".*/\1/')
  PAY=$(curl -s -X POST $QG/v1/scans -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: $(date +%s%N)" -d "{{\"payload\":\"$OP\"}}")
  echo "$PAY"; PID=$(echo "$PAY" | sed 's/.*"id":"\(pay_[a-z0-9]*\)".*/\1/')

4. Partial refund, then the rest (to the original wallet):
  curl -s -X POST $QG/v1/payments/$PID/refunds -H "Authorization: Bearer $MK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: r1-$PID" -d "{{\"amount\":\"6.50\",\"out_refund_no\":\"R1-$PID\"}}"
  curl -s -X POST $QG/v1/payments/$PID/refunds -H "Authorization: Bearer $MK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: r2-$PID" -d "{{\"amount\":\"30.00\",\"out_refund_no\":\"R2-$PID\"}}"
  (a refund number is the merchant's own, unique across its refunds; find one: GET /v1/refunds?out_refund_no=R1-$PID)

5. The auditor checks the books:
  curl -s $QG/v1/ledger/check -H "Authorization: Bearer $AK"
  curl -s $QG/v1/audit/verify -H "Authorization: Bearer $AK"

6. Webhooks: a receiver on port 18777 prints each signed event (Qrgate-Signature header):
  python3 -c 'import http.server as h
class H(h.BaseHTTPRequestHandler):
  def do_POST(s): print(s.headers["Qrgate-Signature"], s.rfile.read(int(s.headers["Content-Length"])).decode(), flush=True); s.send_response(200); s.end_headers()
h.HTTPServer(("127.0.0.1",18777),H).serve_forever()' &
  sleep 1                                             # let the receiver start listening
  WE=$(curl -s -X POST $QG/v1/webhook-endpoints -H "Authorization: Bearer $MK" -H 'Content-Type: application/json' \
       -d '{{"url":"http://127.0.0.1:18777/hook"}}' | sed 's/.*"id":"\(we_[A-Za-z0-9_-]*\)".*/\1/')
  (repeat step 1; the receiver prints payment.succeeded), then see the attempts
  (a failed attempt is retried with backoff: 10 s, 20 s, 40 s, … up to hourly, for over 24 hours):
  curl -s $QG/v1/webhook-endpoints/$WE/deliveries -H "Authorization: Bearer $MK"

7. Step-up: a device-signed code over the level-C daily cap (1000.00) asks for the payment PIN:
  PUB=$(qrgate code device-key --out device.seed)      # qrgate = target/release/qrgate
  DEV=$(curl -s -X POST $QG/v1/devices -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' -d "{{\"public_key\":\"$PUB\"}}")
  DID=$(echo "$DEV" | sed 's/.*"id":"\(dev_[a-z0-9]*\)".*/\1/'); HND=$(echo "$DEV" | sed 's/.*"handles":\["\([A-Za-z0-9_-]*\)".*/\1/')
  curl -s -X POST $QG/v1/me/pin -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' -d '{{"pin":"482915"}}'
  TOK=$(qrgate code sign-token --seed-file device.seed --handle=$HND)
  PAY=$(curl -s -X POST $QG/v1/payments -H "Authorization: Bearer $MK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: $(date +%s%N)" -d "{{\"auth_code\":\"$TOK\",\"amount\":\"1200.00\"}}")
  echo "$PAY"; PID=$(echo "$PAY" | sed 's/.*"id":"\(pay_[a-z0-9]*\)".*/\1/')      # status requires_action
  curl -s -X POST $QG/v1/payments/$PID/confirm -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: c-$PID" -d '{{"pin":"482915"}}'                           # succeeded at level B

8. Merchant money: the balance (net of the 0.6% fee), today's provisional statements (their
   totals are the payments and refunds above), and, once the day is over, its settlement and
   payout to the demo merchant's sandbox bank account (run by the gateway at 00:10 Shanghai time,
   or by hand: qrgate settle --date DAY, or POST /v1/settlements with the admin key):
  curl -s $QG/v1/balance -H "Authorization: Bearer $MK"
  DAY=$(TZ=Asia/Shanghai date +%F)
  curl -s -D - $QG/v1/statements/$DAY/trades.csv -H "Authorization: Bearer $MK"
  curl -s $QG/v1/statements/$DAY/funds.csv -H "Authorization: Bearer $MK"
  curl -s "$QG/v1/settlements?from=$DAY&to=$DAY" -H "Authorization: Bearer $MK"
  curl -s $QG/v1/payouts -H "Authorization: Bearer $MK"

9. A card payment, and the day reconciled against the sandbox card processor's settlement file
   (kept in ./qrgate-sandbox; `qrgate reconcile --date $DAY` run here says the same):
  CARD=$(curl -s -X POST $QG/v1/me/cards -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' \
       -d '{{"number":"4242424242424242","exp_month":12,"exp_year":2030}}' | sed 's/.*"id":"\(crd_[a-z0-9]*\)".*/\1/')
  OP=$(curl -s -X POST $QG/v1/orders -H "Authorization: Bearer $MK" -H 'Content-Type: application/json' \
       -d '{{"amount":"20.00"}}' | sed 's/.*"payload":"\([^"]*\)".*/\1/')
  curl -s -X POST $QG/v1/scans -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: $(date +%s%N)" -d "{{\"payload\":\"$OP\",\"funding_source\":\"$CARD\"}}"
  curl -s $QG/v1/reconciliation/$DAY -H "Authorization: Bearer $AK"

10. Complaints: the payer disputes a 15.00 payment and has the money back in the same answer;
    a 50.00 one is a ticket the merchant answers, the payer escalates, the operator decides
    (with the admin key from qrgate-admin.key):
  pay() {{ OP=$(curl -s -X POST $QG/v1/orders -H "Authorization: Bearer $MK" -H 'Content-Type: application/json' \
       -d "{{\"amount\":\"$1\"}}" | sed 's/.*"payload":"\([^"]*\)".*/\1/')
    curl -s -X POST $QG/v1/scans -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: $(date +%s%N)" -d "{{\"payload\":\"$OP\"}}" | sed 's/.*"id":"\(pay_[a-z0-9]*\)".*/\1/'; }}
  complain() {{ curl -s -X POST $QG/v1/complaints -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: $(date +%s%N)" -d "{{\"payment_id\":\"$1\",\"reason\":\"not_received\",\"description\":\"it never came\"}}"; }}
  complain $(pay 15.00)                                   # status refunded_instantly, refunded 15.00
  CMP=$(complain $(pay 50.00) | sed 's/.*"id":"\(cmp_[a-z0-9]*\)".*/\1/')   # status open, due in 24 h
  curl -s -X POST $QG/v1/complaints/$CMP/photos -H "Authorization: Bearer $CK" -H 'Content-Type: image/png' \
       --data-binary @poster.png                          # a photo (here step 2's poster): seq 1, its url
  curl -s -X POST $QG/v1/complaints/$CMP/answer -H "Authorization: Bearer $MK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: a-$CMP" -d '{{"action":"explain","message":"it was sent on Monday"}}'
  curl -s -X POST $QG/v1/complaints/$CMP/escalate -H "Authorization: Bearer $CK" -H 'Content-Type: application/json' \
       -H "Idempotency-Key: e-$CMP" -d '{{"reason":"nothing arrived"}}'
  curl -s -X POST $QG/v1/complaints/$CMP/decision -H "Authorization: Bearer $(cat qrgate-admin.key)" \
       -H 'Content-Type: application/json' -H "Idempotency-Key: d-$CMP" \
       -d '{{"decision":"refund","reason":"no proof of sending"}}'       # resolved, operator_refund
  curl -s $QG/v1/complaints/metrics -H "Authorization: Bearer $MK"
"#,
        mid = k.merchant_id,
        mkey = k.merchant_key,
        cid = k.customer_id,
        ckey = k.customer_key,
        akey = k.auditor_key,
        base = base,
    );
}

pub async fn serve(args: ServeArgs) -> Result<(), String> {
    init_logging(&args.log_format);
    let mut config = load_config(args.config.as_deref())?;
    if args.demo {
        // A demo runs on one machine: its guide's webhook receiver listens
        // on loopback over plain http, which a deployment refuses by default.
        config.allow_local_http_webhooks = true;
    }
    let webhook_reach = config.webhook_reach();
    config.sealer = Some(sealer(&args.store, Some(&args.admin_key_file), true)?);
    let gw = Arc::new(open(&args.store, config).await?);
    let first_admin = if gw
        .store()
        .has_active_key("admin")
        .await
        .map_err(|e| e.to_string())?
    {
        None
    } else {
        let k = gw
            .create_api_key(None, Role::Admin, None)
            .await
            .map_err(|e| e.to_string())?;
        write_secret(&args.admin_key_file, &k.secret)?;
        Some(args.admin_key_file.clone())
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}");
    tracing::info!(listen = %addr, store = gw.store().kind(), "qrgate started");
    println!(
        "qrgate {} listening on {base} (store: {})",
        env!("CARGO_PKG_VERSION"),
        qrgate_store::redact_url(&args.store.db)
    );
    match &first_admin {
        Some(f) => println!(
            "first start: the admin key is in {} (mode 0600); it is shown nowhere else",
            f.display()
        ),
        None => println!(
            "admin key: the one created on first start (default file {})",
            args.admin_key_file.display()
        ),
    }
    println!("health: {base}/healthz   ready: {base}/readyz   public keys: {base}/v1/keys");
    if args.demo {
        demo(&gw, &base).await?;
    } else {
        println!(
            "next: restart with --demo for a funded demo customer and copy-paste curl commands, or read the README's API overview"
        );
    }

    // Background work (qrgate_gateway::jobs): expiries, key reloads,
    // purges, audit chaining, webhook dispatch; stopped when `jobs` drops.
    let sender = Arc::new(crate::http::webhook_sender::HttpSender::new(webhook_reach)?);
    let jobs = gw.start_jobs(sender);

    let app = router(AppState::new(gw));
    // The peer address goes with each request (QG-RATE-PUBLIC counts by it).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| e.to_string())?;
    drop(jobs);
    tracing::info!("qrgate stopped");
    Ok(())
}

/// SIGTERM or Ctrl-C: stop accepting, let in-flight requests finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

pub async fn migrate(store: StoreArgs) -> Result<(), String> {
    let (_, report) = AnyStore::open(&store.db, SystemClock.now())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({ "applied": report.applied, "already_applied": report.already })
    );
    Ok(())
}

/// Seal every secret under a new master key: start with `--master-key-file
/// NEW --previous-master-key-file OLD` (re-sealing happens as the gateway
/// opens), then check that nothing is left under the old key.
pub async fn secrets_rotate_master(store: StoreArgs) -> Result<(), String> {
    if store.previous_master_key_file.is_none() || store.master_key_file.is_none() {
        return Err(
            "name the old key with --previous-master-key-file and the new one with --master-key-file"
                .into(),
        );
    }
    if std::env::var_os("QRGATE_MASTER_KEY").is_some() {
        return Err("QRGATE_MASTER_KEY is set and would be taken as the new key: unset it, and name the new key with --master-key-file".into());
    }
    let new = sealer(&store, None, false)?;
    let id = new.current_id().to_owned();
    if let Some(old) = &store.previous_master_key_file
        && read_key(old)?.id() == id
    {
        return Err(format!(
            "the new and the previous master key are the same key ({id})"
        ));
    }
    let gw = open(
        &store,
        Config {
            sealer: Some(new.clone()),
            ..Config::default()
        },
    )
    .await?;
    let left = gw
        .store()
        .secret_rows()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| !new.is_current(&r.value))
        .count();
    if left > 0 {
        return Err(format!(
            "{left} secrets are still not sealed under {id}; run it again"
        ));
    }
    println!(
        "{}",
        json!({ "master_key_id": id, "sealed_under_it": "all" })
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct SettleArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The business day, YYYY-MM-DD (in the zone of the limits).
    #[arg(long)]
    pub date: String,
    /// Only this merchant (default: every merchant).
    #[arg(long)]
    pub merchant: Option<String>,
    /// The deployment's TOML config (its `[rules]` set the business day's zone).
    #[arg(long, env = "QRGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `qrgate settle --date D`: settle a day by hand; prints what it did and
/// fails when any merchant's day could not be settled.
pub async fn settle(args: SettleArgs) -> Result<(), String> {
    use qrgate_core::day::BusinessDay;
    use qrgate_gateway::trail::By;
    let day = BusinessDay::parse(&args.date).map_err(|e| e.to_string())?;
    let gw = open(&args.store, load_config(args.config.as_deref())?).await?;
    let by = By::Named("cli");
    let show = |e: qrgate_gateway::Error| format!("{}: {}", e.code, e.message);
    if let Some(m) = &args.merchant {
        let (s, now) = gw.settle_day(by, m, day).await.map_err(show)?;
        let payout = gw.pay_out(by, m).await.map_err(show)?;
        println!(
            "{}",
            json!({ "settled_now": now, "settlement": s, "payout": payout })
        );
        return Ok(());
    }
    let run = gw.settle_all(by, day).await.map_err(show)?;
    // Then pay out what is available, and retry payouts that are due.
    let payouts = gw.pay_out_all(by).await.map_err(show)?;
    gw.payouts_step().await.map_err(show)?;
    println!("{}", json!({ "settlement": run, "payouts": payouts }));
    if run.failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} merchants' days were not settled",
            run.failed.len()
        ))
    }
}

#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The business day, YYYY-MM-DD (in the zone of the limits).
    #[arg(long)]
    pub date: String,
    /// The processor's settlement file for the day, as delivered (default:
    /// ask the configured processor; the sandbox's journal is in
    /// `sandbox_journal_dir`, ./qrgate-sandbox unless configured).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The deployment's TOML config.
    #[arg(long, env = "QRGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `qrgate reconcile --date D [--file F]`: match the processor's
/// settlement file for a day against the ledger; prints the report, and
/// says whether the two agree (exit 0) or not (exit 1).
pub async fn reconcile(args: ReconcileArgs) -> Result<bool, String> {
    let file = match &args.file {
        Some(f) => Some(
            std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?,
        ),
        None => None,
    };
    let gw = open(&args.store, load_config(args.config.as_deref())?).await?;
    let report = gw
        .reconcile(&SYSTEM(), &args.date, file.as_deref())
        .await
        .map_err(|e| format!("{}: {}", e.code, e.message))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    Ok(report.agrees)
}

pub async fn keys_rotate(store: StoreArgs) -> Result<(), String> {
    let gw = open(&store, Config::default()).await?;
    let kid = gw.rotate_keys("cli").await.map_err(|e| e.to_string())?;
    println!("{}", json!({ "active_kid": kid, "keys": gw.public_keys() }));
    Ok(())
}

pub async fn keys_list(store: StoreArgs) -> Result<(), String> {
    let gw = open(&store, Config::default()).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&gw.public_keys()).unwrap_or_default()
    );
    Ok(())
}

pub async fn audit_verify(store: StoreArgs) -> Result<bool, String> {
    let (s, _) = AnyStore::open(&store.db, SystemClock.now())
        .await
        .map_err(|e| e.to_string())?;
    let v = s.verify_audit().await.map_err(|e| e.to_string())?;
    let ledger = s.ledger_check().await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({ "audit": v, "ledger": { "balanced": ledger.is_sound(), "check": ledger } })
    );
    Ok(matches!(v, AuditVerdict::Intact { .. }) && ledger.is_sound())
}
