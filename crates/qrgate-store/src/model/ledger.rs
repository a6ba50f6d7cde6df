//! The ledger: accounts, entries and postings, the counters caps are kept
//! on, burned codes, and what the ledger check finds.

use serde::{Deserialize, Serialize};

use qrgate_core::{AccountId, CounterKey, Currency, Money, Timestamp};

/// A ledger account. `allow_negative` is false for customer wallets and
/// merchant settlement; true for the external clearing account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    /// `consumer_wallet`, `merchant_settlement`, `fees`, `external_clearing`.
    pub kind: String,
    pub owner_id: Option<String>,
    pub currency: Currency,
    pub allow_negative: bool,
    pub balance_minor: i64,
    pub created_at: Timestamp,
    /// A merchant's pending account whose days up to this time were
    /// settled: it takes no entry dated before it.
    #[serde(default)]
    pub closed_until: Option<Timestamp>,
}

/// One line of a posting, in minor units: positive adds to the account's
/// balance, negative takes from it. A posting's entries sum to zero per currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub account_id: AccountId,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// A set of entries that balances per currency (checked before anything is written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub id: String,
    /// `payment`, `refund`, `topup`, `reversal`, …
    pub kind: String,
    pub payment_id: Option<String>,
    /// The merchant whose accounts it moves, if any: a merchant's postings
    /// of a day are what its settlement and fund-flow statement read.
    #[serde(default)]
    pub merchant_id: Option<String>,
    pub entries: Vec<Entry>,
}

impl Posting {
    /// `amount` from one account to another.
    pub fn transfer(
        id: String,
        kind: &str,
        payment_id: Option<&str>,
        from: AccountId,
        to: AccountId,
        amount: Money,
    ) -> Posting {
        Posting {
            id,
            kind: kind.into(),
            payment_id: payment_id.map(str::to_owned),
            merchant_id: None,
            entries: vec![
                Entry {
                    account_id: from,
                    amount_minor: -amount.minor(),
                    currency: amount.currency(),
                },
                Entry {
                    account_id: to,
                    amount_minor: amount.minor(),
                    currency: amount.currency(),
                },
            ],
        }
    }

    /// A posting of several lines in one currency, each an account and
    /// the minor units it gains (negative: loses); lines of zero are left
    /// out. A payment with a fee is three lines (source, merchant net of
    /// the fee, fee revenue), and so is a refund giving back part of one.
    pub fn lines(
        id: String,
        kind: &str,
        payment_id: Option<&str>,
        currency: Currency,
        lines: Vec<(AccountId, i64)>,
    ) -> Posting {
        Posting {
            id,
            kind: kind.into(),
            payment_id: payment_id.map(str::to_owned),
            merchant_id: None,
            entries: lines
                .into_iter()
                .filter(|(_, amount)| *amount != 0)
                .map(|(account_id, amount_minor)| Entry {
                    account_id,
                    amount_minor,
                    currency,
                })
                .collect(),
        }
    }

    /// The same posting, naming the merchant whose accounts it moves.
    pub fn for_merchant(mut self, merchant_id: &str) -> Posting {
        self.merchant_id = Some(merchant_id.to_owned());
        self
    }

    /// Entries are non-empty, non-zero, name each account once, and sum
    /// to zero in every currency (rule QG-LEDGER-BALANCED, checked before
    /// anything is written). Once per account: the one-statement movement
    /// on PostgreSQL moves each account's row in its own step, and one
    /// statement cannot change a row twice.
    pub fn check_balanced(&self) -> Result<(), String> {
        if self.entries.len() < 2 {
            return Err(format!("posting {} needs at least two entries", self.id));
        }
        for (i, e) in self.entries.iter().enumerate() {
            if self.entries[..i]
                .iter()
                .any(|o| o.account_id == e.account_id)
            {
                return Err(format!(
                    "posting {} names account {} twice",
                    self.id, e.account_id
                ));
            }
        }
        let mut sums: Vec<(Currency, i128)> = Vec::new();
        for e in &self.entries {
            if e.amount_minor == 0 {
                return Err(format!("posting {} has a zero entry", self.id));
            }
            match sums.iter_mut().find(|(c, _)| *c == e.currency) {
                Some((_, s)) => *s += i128::from(e.amount_minor),
                None => sums.push((e.currency, i128::from(e.amount_minor))),
            }
        }
        match sums.iter().find(|(_, s)| *s != 0) {
            Some((c, s)) => Err(format!(
                "posting {} does not balance in {c}: off by {s}",
                self.id
            )),
            None => Ok(()),
        }
    }
}

/// Add to a counter (a customer's daily total, a payment's refunded amount,
/// a count of refunds) unless the result would pass its cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterCharge {
    pub key: CounterKey,
    pub amount_minor: i64,
    pub uses: i64,
    pub cap_amount: Option<i64>,
    pub cap_uses: Option<i64>,
    /// The rule id to cite when the cap stops the movement.
    pub rule: String,
}

/// Burn a one-time code (payment token nonce, numeric code, order): a
/// second burn of the same key fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeBurn {
    pub key: String,
    pub payment_id: Option<String>,
    pub expires_at: Timestamp,
}

/// The balance check of the whole ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerCheck {
    /// Sum of all entries per currency (zero when the ledger balances).
    pub totals: Vec<(String, i64)>,
    /// Accounts whose stored balance differs from the sum of their entries.
    pub mismatched_accounts: Vec<String>,
    /// Accounts below zero that may not be.
    pub negative_accounts: Vec<String>,
    pub entries: i64,
    /// Payments whose postings disagree with what their state says moved
    /// (at most [`LedgerCheck::MAX_LISTED`] of them, by id). A ledger can
    /// balance while money left twice; this is what shows it.
    pub disagreeing_payments: Vec<PaymentDisagreement>,
    /// Settlements whose figures do not add up (carried in + net −
    /// settled = carried out, nothing negative settled, nothing positive
    /// carried out) or whose posting did not move what they say they
    /// settled into available, as `merchant/date`.
    #[serde(default)]
    pub disagreeing_settlements: Vec<String>,
    /// Postings that name a merchant but move another party's merchant
    /// accounts (they would be missing from that merchant's statements),
    /// by id.
    #[serde(default)]
    pub misattributed_postings: Vec<String>,
}

impl LedgerCheck {
    /// Most disagreeing payments listed by one check.
    pub const MAX_LISTED: i64 = 1000;

    pub fn is_sound(&self) -> bool {
        self.totals.iter().all(|(_, t)| *t == 0)
            && self.mismatched_accounts.is_empty()
            && self.negative_accounts.is_empty()
            && self.disagreeing_payments.is_empty()
            && self.disagreeing_settlements.is_empty()
            && self.misattributed_postings.is_empty()
    }
}

/// One payment's state beside the postings that name it. Each posted
/// figure is the money a posting of that kind moved (the sum of its
/// positive entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentDisagreement {
    pub payment_id: String,
    /// The payment's status, or `missing` when postings name a payment
    /// that does not exist.
    pub status: String,
    pub amount_minor: i64,
    /// What the payment row says was refunded.
    pub refunded_minor: i64,
    /// The sum of its refund records.
    pub refunds_minor: i64,
    /// Moved by `payment` postings.
    pub captured_minor: i64,
    /// Moved by `refund` postings.
    pub refunded_posted_minor: i64,
    /// Moved by `reversal` (cancel) postings.
    pub reversed_minor: i64,
    /// Moved by postings of any other kind that name the payment.
    pub other_minor: i64,
    /// The fee the payment costs when it succeeds.
    pub fee_minor: i64,
    /// What its refunds say they gave back of the fee.
    pub fee_returned_minor: i64,
    /// What its postings moved into the fee revenue, net.
    pub fee_posted_minor: i64,
    /// What disagrees, in words.
    pub problems: Vec<String>,
}

impl PaymentDisagreement {
    /// What the state and the postings disagree on; empty when they agree.
    /// The rules: refunded and reversed money never exceed what was
    /// captured; the refunds, the payment's refunded amount and the refund
    /// postings agree; a succeeded payment was captured in full and not
    /// reversed; a canceled one was reversed in full (or never captured) and
    /// not refunded; any other state moved nothing.
    pub fn problems_of(&self) -> Vec<String> {
        let mut out = Vec::new();
        let (captured, refunded, reversed) = (
            self.captured_minor,
            self.refunded_posted_minor,
            self.reversed_minor,
        );
        if self.status == "missing" {
            out.push("postings name a payment that does not exist".to_owned());
            return out;
        }
        if refunded.saturating_add(reversed) > captured {
            out.push(format!(
                "refunded {refunded} + reversed {reversed} exceed captured {captured}"
            ));
        }
        if refunded != self.refunded_minor || self.refunds_minor != self.refunded_minor {
            out.push(format!(
                "refund postings {refunded}, refund records {} and the payment's refunded amount {} differ",
                self.refunds_minor, self.refunded_minor
            ));
        }
        // The fee kept is the payment's fee less what refunds gave back
        // while it stands; nothing once it was canceled or never succeeded.
        let fee_kept = if self.status == "succeeded" {
            self.fee_minor - self.fee_returned_minor
        } else {
            0
        };
        if self.fee_posted_minor != fee_kept {
            out.push(format!(
                "fee postings {} but the fee kept is {fee_kept} (fee {}, given back {})",
                self.fee_posted_minor, self.fee_minor, self.fee_returned_minor
            ));
        }
        if self.other_minor != 0 {
            out.push(format!(
                "{} moved by postings of another kind",
                self.other_minor
            ));
        }
        match self.status.as_str() {
            "succeeded" => {
                if captured != self.amount_minor {
                    out.push(format!(
                        "succeeded for {} but {captured} captured",
                        self.amount_minor
                    ));
                }
                if reversed != 0 {
                    out.push(format!("succeeded but {reversed} reversed"));
                }
            }
            "canceled" => {
                if reversed != captured || (captured != 0 && captured != self.amount_minor) {
                    out.push(format!(
                        "canceled with {captured} captured and {reversed} reversed"
                    ));
                }
                if self.refunded_minor != 0 || refunded != 0 {
                    out.push("canceled after refunds".to_owned());
                }
            }
            other => {
                if captured != 0 || reversed != 0 || refunded != 0 {
                    out.push(format!("{other} but money moved"));
                }
            }
        }
        out
    }
}
