//! The deployment's settings, and the numbers the gateway enforces, read
//! from the rule catalogue with the deployment's overrides.

use std::collections::BTreeMap;
use std::sync::Arc;

use qrgate_core::rules::Catalogue;
use qrgate_core::seal::Sealer;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Numbers the gateway enforces, read from the rule catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub code_ttl_seconds: u8,
    pub daily_b: i64,
    pub daily_c: i64,
    pub daily_d: i64,
    /// BCP-LIMIT-NESTED: a payment also counts toward the levels with a
    /// higher cap (D toward C and B, C toward B).
    pub nested_caps: bool,
    pub class_i_total: i64,
    pub class_ii_yearly: i64,
    pub class_iii_yearly: i64,
    pub business_offset_minutes: i32,
    pub refund_count: i64,
    pub refund_window_seconds: i64,
    pub order_ttl_seconds: i64,
    pub idempotency_hours: i64,
    pub stepup_ttl_seconds: i64,
    pub pin_lockout: i64,
    pub pin_lock_minutes: i64,
    pub small_credit_day: i64,
    pub small_credit_month: i64,
    /// Optional limits: `None` while off.
    pub password_free_count: Option<i64>,
    pub txn_cap: Option<i64>,
    pub velocity_per_minute: Option<i64>,
    pub cancel_window_seconds: i64,
    pub anomaly_factor: i64,
    pub personal_code_payers: i64,
    /// Rate limits per minute (QG-RATE-*).
    pub rate_code_issue: i64,
    pub rate_unknown_code: i64,
    pub rate_pin: i64,
    pub rate_public: i64,
    /// Default fee rates by merchant category, in basis points.
    pub fee_regular_bps: u32,
    pub fee_small_personal_bps: u32,
    /// Complaints (QG-COMPLAINT-*).
    pub complaints: ComplaintLimits,
}

/// The numbers of the complaint rules (QG-COMPLAINT-*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ComplaintLimits {
    pub window_seconds: i64,
    pub instant_max_minor: i64,
    pub instant_cap_count: i64,
    pub instant_cap_minor: i64,
    pub instant_cap_window_seconds: i64,
    pub first_reply_seconds: i64,
    pub resolve_seconds: i64,
    pub payer_reply_seconds: i64,
    pub contest_window_seconds: i64,
    pub rate_alarm_per_thousand: i64,
    pub rate_min_payments: i64,
    pub rate_window_seconds: i64,
    pub photo_max_bytes: i64,
    pub photos_max: i64,
    pub tamper_reporters: i64,
    pub tamper_window_seconds: i64,
}

/// A count or size rule's value, 1 to `max`.
fn positive(c: &Catalogue, id: &str, max: i64) -> Result<i64, qrgate_core::rules::RuleError> {
    let v = c.value(id)?;
    if (1..=max).contains(&v) {
        Ok(v)
    } else {
        Err(qrgate_core::rules::RuleError::OutOfRange {
            id: id.into(),
            value: v,
            why: "a complaint's count or size is at least 1 and at most the gateway can hold",
        })
    }
}

impl ComplaintLimits {
    fn from_catalogue(c: &Catalogue) -> Result<ComplaintLimits, qrgate_core::rules::RuleError> {
        // A window or deadline is 1 s to 10 years: `now ± it` always fits.
        let span = |id: &str| -> Result<i64, qrgate_core::rules::RuleError> {
            let v = c.value(id)?;
            if (1..=315_360_000).contains(&v) {
                Ok(v)
            } else {
                Err(qrgate_core::rules::RuleError::OutOfRange {
                    id: id.into(),
                    value: v,
                    why: "a complaint window or deadline is 1 second to 10 years",
                })
            }
        };
        Ok(ComplaintLimits {
            window_seconds: span("QG-COMPLAINT-WINDOW")?,
            instant_max_minor: c.value("QG-COMPLAINT-INSTANT-REFUND")?,
            instant_cap_count: c.value("QG-COMPLAINT-INSTANT-CAP")?,
            instant_cap_minor: c.value("QG-COMPLAINT-INSTANT-CAP-AMOUNT")?,
            instant_cap_window_seconds: span("QG-COMPLAINT-INSTANT-CAP-WINDOW")?,
            first_reply_seconds: span("QG-COMPLAINT-FIRST-REPLY")?,
            resolve_seconds: span("QG-COMPLAINT-RESOLVE")?,
            payer_reply_seconds: span("QG-COMPLAINT-PAYER-REPLY")?,
            contest_window_seconds: span("QG-COMPLAINT-CONTEST-WINDOW")?,
            rate_alarm_per_thousand: c.value("QG-COMPLAINT-RATE-ALARM")?,
            rate_min_payments: c.value("QG-COMPLAINT-RATE-MIN-PAYMENTS")?,
            rate_window_seconds: span("QG-COMPLAINT-RATE-WINDOW")?,
            photo_max_bytes: positive(c, "QG-COMPLAINT-PHOTO-BYTES", 16 * 1024 * 1024)?,
            photos_max: positive(c, "QG-COMPLAINT-PHOTOS", 20)?,
            tamper_reporters: positive(c, "QG-COMPLAINT-TAMPER-REPORTS", 1000)?,
            tamper_window_seconds: span("QG-COMPLAINT-TAMPER-WINDOW")?,
        })
    }
}

impl Limits {
    pub fn from_catalogue(c: &Catalogue) -> Result<Limits, qrgate_core::rules::RuleError> {
        use qrgate_core::rules::RuleError;
        let ttl = c.value("BCP-CODE-TTL")?;
        let code_ttl_seconds = u8::try_from(ttl)
            .ok()
            .filter(|t| (1..=qrgate_codes::cpm::MAX_TTL_SECONDS).contains(t))
            .ok_or(RuleError::OutOfRange {
                id: "BCP-CODE-TTL".into(),
                value: ttl,
                why: "a payment code's validity is 1 to 60 seconds",
            })?;
        let offset = c.value("BCP-LIMIT-SCOPE")?;
        let business_offset_minutes = i32::try_from(offset)
            .ok()
            .filter(|m| m.abs() <= 14 * 60)
            .ok_or(RuleError::OutOfRange {
                id: "BCP-LIMIT-SCOPE".into(),
                value: offset,
                why: "a time zone is at most 14 hours from UTC",
            })?;
        let bps = |id: &str, v: i64| -> Result<u32, RuleError> {
            u32::try_from(v)
                .ok()
                .filter(|b| *b <= 10_000)
                .ok_or(RuleError::OutOfRange {
                    id: id.into(),
                    value: v,
                    why: "a fee rate is 0 to 10000 basis points",
                })
        };
        Ok(Limits {
            fee_regular_bps: bps("QG-FEE-REGULAR", c.value("QG-FEE-REGULAR")?)?,
            fee_small_personal_bps: bps(
                "QG-FEE-SMALL-PERSONAL",
                c.value("QG-FEE-SMALL-PERSONAL")?,
            )?,
            code_ttl_seconds,
            daily_b: c.value("BCP-LIMIT-B-DAILY")?,
            daily_c: c.value("BCP-LIMIT-C-DAILY")?,
            daily_d: c.value("BCP-LIMIT-D-STATIC")?,
            nested_caps: match c.value("BCP-LIMIT-NESTED")? {
                0 => false,
                1 => true,
                other => {
                    return Err(RuleError::OutOfRange {
                        id: "BCP-LIMIT-NESTED".into(),
                        value: other,
                        why: "0 (separate buckets) or 1 (nested)",
                    });
                }
            },
            class_i_total: c.value("BCP-ACCT-CLASS-I")?,
            class_ii_yearly: c.value("BCP-ACCT-CLASS-II")?,
            class_iii_yearly: c.value("BCP-ACCT-CLASS-III")?,
            business_offset_minutes,
            refund_count: c.value("BCP-REFUND-COUNT")?,
            refund_window_seconds: c.value("BCP-REFUND-WINDOW")?,
            order_ttl_seconds: c.value("QG-ORDER-TTL")?,
            idempotency_hours: c.value("QG-IDEMPOTENCY")?,
            stepup_ttl_seconds: c.value("QG-STEPUP-TTL")?,
            pin_lockout: c.value("QG-PIN-LOCKOUT")?,
            pin_lock_minutes: c.value("QG-PIN-LOCK-MINUTES")?,
            small_credit_day: c.value("BCP-SMALL-MERCHANT-CREDIT-DAY")?,
            small_credit_month: c.value("BCP-SMALL-MERCHANT-CREDIT-MONTH")?,
            password_free_count: c.optional_value("BCP-PASSWORD-FREE-COUNT")?,
            txn_cap: c.optional_value("BCP-TXN-CAP")?,
            velocity_per_minute: c.optional_value("QG-VELOCITY-CUSTOMER")?,
            cancel_window_seconds: c.value("QG-CANCEL-WINDOW")?,
            anomaly_factor: c.value("QG-ANOMALY-AMOUNT")?,
            personal_code_payers: c.value("QG-PERSONAL-CODE-PAYERS")?,
            rate_code_issue: c.value("QG-RATE-CODE-ISSUE")?,
            rate_unknown_code: c.value("QG-RATE-UNKNOWN-CODE")?,
            rate_pin: c.value("QG-RATE-PIN")?,
            rate_public: c.value("QG-RATE-PUBLIC")?,
            complaints: ComplaintLimits::from_catalogue(c)?,
        })
    }
}

/// Deployment settings of the gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Rule overrides by id (stricter only, unless listed in `allow_loosening`).
    #[serde(default)]
    pub rules: BTreeMap<String, i64>,
    #[serde(default)]
    pub allow_loosening: Vec<String>,
    /// Deprecated spelling of `[rules] QG-CANCEL-WINDOW`, still honoured
    /// (an override in `[rules]` wins).
    #[serde(default)]
    pub cancel_window_seconds: Option<i64>,
    /// How long the gateway waits for each card-processor call before it
    /// treats the answer as lost (then queries, then reverses).
    #[serde(default = "default_processor_timeout")]
    pub processor_timeout_ms: u64,
    /// BCP-TXN-CAP per merchant category: MCC → most a single payment may
    /// be, in minor units (never above BCP-TXN-CAP when that is set).
    #[serde(default)]
    pub txn_cap_by_mcc: BTreeMap<String, i64>,
    /// Accept webhook endpoints on internal addresses (private, loopback,
    /// link-local…) over https: for a deployment whose merchants' systems
    /// are on its own network. Off by default.
    #[serde(default)]
    pub allow_internal_webhooks: bool,
    /// Accept plain-http webhook endpoints on loopback / `localhost`: for a
    /// development machine or a test run, never for production. Off by
    /// default.
    #[serde(default)]
    pub allow_local_http_webhooks: bool,
    /// Proxies in front of the gateway (address blocks: `10.0.0.0/8`,
    /// `fd00::/8`, `127.0.0.1`) whose `X-Forwarded-For` names the client
    /// for the per-address limits (QG-RATE-PUBLIC). Empty by default: the
    /// header is ignored and the connection's peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Where the sandbox card processor keeps its journal (the records of
    /// its daily settlement files), so `qrgate reconcile` and a restarted
    /// gateway read the same files. None: in memory only.
    #[serde(default)]
    pub sandbox_journal_dir: Option<std::path::PathBuf>,
    /// The master key (and older ones, for a rotation) that seals secrets
    /// at rest. Given by the embedding program (`serve` reads a key file or
    /// the environment), never by the TOML file.
    #[serde(skip)]
    pub sealer: Option<Arc<Sealer>>,
    /// How long a web page sign-in lasts (minutes; 5 to 1440). A till is
    /// signed in for a shift.
    #[serde(default = "default_web_session_minutes")]
    pub web_session_minutes: i64,
    /// Mark the pages' cookies `Secure` and send HSTS: set it when the
    /// gateway is reached over https (its own TLS or a terminating proxy).
    #[serde(default)]
    pub secure_cookies: bool,
}

impl Config {
    /// What webhooks may reach beyond the public internet.
    pub fn webhook_reach(&self) -> qrgate_core::net::Reach {
        qrgate_core::net::Reach {
            internal: self.allow_internal_webhooks,
            local_http: self.allow_local_http_webhooks,
        }
    }
}

fn default_processor_timeout() -> u64 {
    3000
}

fn default_web_session_minutes() -> i64 {
    8 * 60
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rules: BTreeMap::new(),
            allow_loosening: Vec::new(),
            cancel_window_seconds: None,
            processor_timeout_ms: default_processor_timeout(),
            txn_cap_by_mcc: BTreeMap::new(),
            allow_internal_webhooks: false,
            allow_local_http_webhooks: false,
            trusted_proxies: Vec::new(),
            sandbox_journal_dir: None,
            sealer: None,
            web_session_minutes: default_web_session_minutes(),
            secure_cookies: false,
        }
    }
}

/// The catalogue with the deployment's overrides, the limits it states,
/// and the overrides applied; a configuration that loosens a rule without
/// `allow_loosening`, or sets a category cap above the general one, is
/// refused.
pub(crate) fn rules_of(
    config: &Config,
) -> Result<(Catalogue, Limits, Vec<qrgate_core::rules::Applied>), Error> {
    let catalogue = Catalogue::builtin().map_err(Error::internal)?;
    let mut overrides = config.rules.clone();
    if let Some(w) = config.cancel_window_seconds {
        tracing::warn!(
            "config cancel_window_seconds is deprecated: write QG-CANCEL-WINDOW = {w} under [rules]"
        );
        overrides.entry("QG-CANCEL-WINDOW".to_owned()).or_insert(w);
    }
    let (catalogue, applied) = catalogue
        .with_overrides(&overrides, &config.allow_loosening)
        .map_err(|e| Error::bad_request("config_rule_override", e.to_string()))?;
    let limits = Limits::from_catalogue(&catalogue)
        .map_err(|e| Error::bad_request("config_rule_override", e.to_string()))?;
    for (mcc, cap) in &config.txn_cap_by_mcc {
        if mcc.len() != 4 || !mcc.bytes().all(|b| b.is_ascii_digit()) || *cap <= 0 {
            return Err(Error::bad_request(
                "config_rule_override",
                format!(
                    "txn_cap_by_mcc: {mcc:?} = {cap}: keys are four-digit MCCs, caps positive minor units"
                ),
            ));
        }
        if let Some(general) = limits.txn_cap.filter(|g| cap > g) {
            return Err(Error::bad_request(
                "config_rule_override",
                format!(
                    "txn_cap_by_mcc: {mcc} = {cap} is above BCP-TXN-CAP ({general}); a category cap may only be lower"
                ),
            ));
        }
    }
    Ok((catalogue, limits, applied))
}
