//! The rows written once (a [`Record`]), each kind with its `INSERT`. A
//! new kind of row is a new model type, a `Record` variant and an impl
//! here: the movement and the writer take it without new code.

use crate::db::Arg;

use super::*;

/// A kind of row written once: its `INSERT … ON CONFLICT DO NOTHING` (so
/// a taken key writes nothing, and the caller says so) and how the row is
/// named when its key is taken.
pub(crate) trait Table: Sync {
    fn named(&self) -> String;
    fn insert(&self) -> (&'static str, Vec<Arg<'_>>);
}

impl Record {
    pub(crate) fn table(&self) -> &dyn Table {
        match self {
            Record::Account(r) => r,
            Record::Merchant(r) => r,
            Record::Customer(r) => r,
            Record::Device(r) => r,
            Record::Certificate(r) => r,
            Record::Card(r) => r,
            Record::Otp(r) => r,
            Record::Block(r) => r,
            Record::ApiKey(r) => r,
            Record::StaticCode(r) => r,
            Record::Order(r) => r,
            Record::IssuedCode(r) => r,
            Record::WebhookEndpoint(r) => r,
            Record::Payout(r) => r,
            Record::Review(r) => r,
            Record::WebSession(r) => r,
        }
    }
}

impl Table for WebSession {
    fn named(&self) -> String {
        "a web session with this token".into()
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO web_sessions (token_hash, key_id, csrf, created_at, expires_at, ended_at) \
                 VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.token_hash),
                Arg::Str(&self.key_id),
                Arg::Str(&self.csrf),
                Arg::I64(self.created_at.unix_millis()),
                Arg::I64(self.expires_at.unix_millis()),
            ],
        )
    }
}

impl Table for Review {
    fn named(&self) -> String {
        format!("a decision on {} {}", self.kind, self.subject_id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO reviews (kind, subject_id, merchant_id, decision, reason, decided_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.kind),
                Arg::Str(&self.subject_id),
                Arg::Str(&self.merchant_id),
                Arg::Str(&self.decision),
                Arg::Str(&self.reason),
                Arg::Str(&self.decided_by),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for Payout {
    fn named(&self) -> String {
        format!(
            "payout {} (or a pending payout of merchant {})",
            self.id, self.merchant_id
        )
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO payouts (id, merchant_id, amount_minor, currency, bank_account, status, attempts, \
                 next_attempt_at, failure, bank_reference, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.merchant_id),
                Arg::I64(self.amount_minor),
                Arg::Str(self.currency.code()),
                Arg::Str(&self.bank_account),
                Arg::Str(self.status.as_str()),
                Arg::I64(self.attempts),
                Arg::OptI64(self.next_attempt_at.map(|t| t.unix_millis())),
                Arg::OptStr(self.failure.as_deref()),
                Arg::OptStr(self.bank_reference.as_deref()),
                Arg::I64(self.created_at.unix_millis()),
                Arg::I64(self.updated_at.unix_millis()),
            ],
        )
    }
}

impl Table for Account {
    fn named(&self) -> String {
        format!("account {}", self.id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO accounts (id, kind, owner_id, currency, allow_negative, balance_minor, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(self.id.as_str()),
                Arg::Str(&self.kind),
                Arg::OptStr(self.owner_id.as_deref()),
                Arg::Str(self.currency.code()),
                Arg::Bool(self.allow_negative),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for Merchant {
    fn named(&self) -> String {
        format!("merchant {}", self.id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO merchants (id, name, city, country, mcc, currency, category, name_local, owner_ref, \
                 fee_rate_bps, fee_min_minor, bank_account, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.name),
                Arg::Str(&self.city),
                Arg::Str(&self.country),
                Arg::Str(&self.mcc),
                Arg::Str(self.currency.code()),
                Arg::Str(&self.category),
                Arg::OptStr(self.name_local.as_deref()),
                Arg::OptStr(self.owner_ref.as_deref()),
                Arg::I64(i64::from(self.fees.rate_bps)),
                Arg::I64(self.fees.min_fee_minor),
                Arg::OptStr(self.bank_account.as_deref()),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for Customer {
    fn named(&self) -> String {
        format!("customer {}", self.id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO customers (id, account_class, level_a_cap, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.account_class),
                Arg::OptI64(self.level_a_cap),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for Device {
    fn named(&self) -> String {
        format!("device {} (key id {})", self.id, self.kid)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO devices (id, customer_id, kid, public_key, status, created_at, enrolled_by, biometric_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.customer_id),
                Arg::Str(&self.kid),
                Arg::Str(&self.public_key),
                Arg::Str(self.status.as_str()),
                Arg::I64(self.created_at.unix_millis()),
                Arg::OptStr(self.enrolled_by.as_deref()),
                Arg::OptI64(self.biometric_at.map(|t| t.unix_millis())),
            ],
        )
    }
}

impl Table for Certificate {
    fn named(&self) -> String {
        format!("certificate {} (or its key)", self.id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO certificates (id, customer_id, public_key, status, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.customer_id),
                Arg::Str(&self.public_key),
                Arg::Str(self.status.as_str()),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for Card {
    fn named(&self) -> String {
        format!("card {} (or its token)", self.id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO cards (id, customer_id, processor, token, brand, last4, funding, exp_month, exp_year, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.customer_id),
                Arg::Str(&self.processor),
                Arg::Str(&self.token),
                Arg::Str(&self.brand),
                Arg::Str(&self.last4),
                Arg::Str(&self.funding),
                Arg::I64(self.exp_month),
                Arg::I64(self.exp_year),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for OtpEnrollment {
    fn named(&self) -> String {
        format!("OTP enrollment {}", self.id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO otp_enrollments (id, customer_id, secret, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.customer_id),
                Arg::Str(&self.secret),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for Block {
    fn named(&self) -> String {
        format!("block {}", self.id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO blocks (id, subject_id, reason, created_at, lifted_at) VALUES ($1, $2, $3, $4, NULL) \
                 ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.subject_id),
                Arg::Str(&self.reason),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for ApiKey {
    fn named(&self) -> String {
        format!("API key {}", self.id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO api_keys (id, key_hash, role, subject_id, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL) \
                 ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.key_hash),
                Arg::Str(&self.role),
                Arg::OptStr(self.subject_id.as_deref()),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for StaticCode {
    fn named(&self) -> String {
        format!("static code {}", self.id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO static_codes (id, merchant_id, payload, created_at, revoked_at) VALUES ($1, $2, $3, $4, NULL) \
                 ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.merchant_id),
                Arg::Str(&self.payload),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for Order {
    fn named(&self) -> String {
        format!(
            "order {} or out_trade_no {:?}",
            self.id,
            self.out_trade_no.as_deref().unwrap_or_default()
        )
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO orders (id, merchant_id, amount_minor, currency, reference, out_trade_no, status, payload, payment_id, \
                 expires_at, created_at, updated_at, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $10, $11) \
                 ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.merchant_id),
                Arg::I64(self.amount_minor),
                Arg::Str(self.currency.code()),
                Arg::Str(&self.reference),
                Arg::OptStr(self.out_trade_no.as_deref()),
                Arg::Str(&self.status),
                Arg::Str(&self.payload),
                Arg::I64(self.expires_at.unix_millis()),
                Arg::I64(self.created_at.unix_millis()),
                Arg::OptStr(self.metadata.to_column()),
            ],
        )
    }
}

impl Table for IssuedCode {
    fn named(&self) -> String {
        "issued code".to_owned()
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO issued_codes (code, customer_id, device_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.code),
                Arg::Str(&self.customer_id),
                Arg::OptStr(self.device_id.as_deref()),
                Arg::I64(self.expires_at.unix_millis()),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}

impl Table for WebhookEndpoint {
    fn named(&self) -> String {
        format!("webhook endpoint {}", self.id)
    }

    fn insert(&self) -> (&'static str, Vec<Arg<'_>>) {
        (
            "INSERT INTO webhook_endpoints (id, merchant_id, url, secret, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, NULL) \
                 ON CONFLICT DO NOTHING",
            vec![
                Arg::Str(&self.id),
                Arg::Str(&self.merchant_id),
                Arg::Str(&self.url),
                Arg::Str(&self.secret),
                Arg::I64(self.created_at.unix_millis()),
            ],
        )
    }
}
