//! Paying merchants: the [`Payouts`] trait a bank connection implements,
//! and [`SandboxBank`], a deterministic bank that lives in the gateway's
//! process, whose answer depends on the account number paid to.
//!
//! Sandbox account numbers:
//!
//! | account | what the sandbox bank does |
//! |---|---|
//! | `6222000000000001` | pays |
//! | `6222000000000019` | is unavailable at the first attempt (may retry), pays at the next |
//! | `6222000000000027` | pays, then sends the money back (account closed) |
//! | `6222000000000035` | refuses for good (no such account) |
//! | `6222000000000043` | never answers (the gateway's deadline passes; it asks again) |
//!
//! Any other well-formed number pays.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::BoxFuture;

/// What the bank said to a payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankAnswer {
    /// Paid, under the bank's reference.
    Paid { reference: String },
    /// Not paid. `retry`: the failure may pass (ask again later, with the
    /// same payout id); otherwise it is final.
    Refused { reason: String, retry: bool },
}

/// A payout the bank paid and then sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    pub payout_id: String,
    pub reason: String,
}

/// A connection to the bank that pays merchants.
pub trait Payouts: Send + Sync {
    /// A short name, used in account ids (`clearing:bank:<name>:CNY`).
    fn name(&self) -> &'static str;

    /// Pay `amount_minor` to `account` under `payout_id`. Idempotent by
    /// `payout_id`: asking again pays once, and answers as it did when it
    /// paid.
    fn pay<'a>(
        &'a self,
        payout_id: &'a str,
        account: &'a str,
        amount_minor: i64,
    ) -> BoxFuture<'a, BankAnswer>;

    /// Payouts paid earlier and since sent back. Reported on every call
    /// (a real bank's list with a cursor would do the same): the gateway
    /// records each once, when its payout is recorded paid, and may be
    /// asked before that.
    fn returns(&self) -> BoxFuture<'_, Vec<Returned>>;
}

/// Whether `account` is a bank account number the gateway accepts: 12 to
/// 19 digits.
pub fn check_account(account: &str) -> bool {
    (12..=19).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_digit())
}

/// The sandbox account that pays.
pub const SANDBOX_PAYS: &str = "6222000000000001";
/// The sandbox account that fails once (may retry), then pays.
pub const SANDBOX_FAILS_ONCE: &str = "6222000000000019";
/// The sandbox account that pays, then sends the money back.
pub const SANDBOX_RETURNS: &str = "6222000000000027";
/// The sandbox account that refuses for good.
pub const SANDBOX_REFUSES: &str = "6222000000000035";
/// The sandbox account whose bank never answers.
pub const SANDBOX_SILENT: &str = "6222000000000043";

#[derive(Debug, Clone)]
struct Seen {
    attempts: u32,
    answer: Option<BankAnswer>,
    returned: bool,
    account: String,
}

/// A deterministic bank (see the module's table of accounts). Its memory
/// is lost on restart: a payout asked again after a restart is paid again
/// by it, which a real bank's idempotency would not do.
#[derive(Default)]
pub struct SandboxBank {
    seen: Mutex<HashMap<String, Seen>>,
}

impl SandboxBank {
    pub fn new() -> SandboxBank {
        SandboxBank::default()
    }

    /// How many times a payout was sent (for tests).
    pub fn attempts(&self, payout_id: &str) -> u32 {
        self.lock().get(payout_id).map_or(0, |s| s.attempts)
    }

    /// How many payouts to `account` the bank paid and kept (not sent back).
    pub fn paid_to(&self, account: &str) -> usize {
        self.lock()
            .values()
            .filter(|s| {
                s.account == account
                    && !s.returned
                    && matches!(s.answer, Some(BankAnswer::Paid { .. }))
            })
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn answer(&self, payout_id: &str, account: &str) -> BankAnswer {
        let mut seen = self.lock();
        let s = seen.entry(payout_id.to_owned()).or_insert_with(|| Seen {
            attempts: 0,
            answer: None,
            returned: false,
            account: account.to_owned(),
        });
        s.attempts += 1;
        if let Some(a) = &s.answer {
            return a.clone();
        }
        let paid = BankAnswer::Paid {
            reference: format!("sbx_bank_{payout_id}"),
        };
        let answer = match account {
            _ if !check_account(account) => BankAnswer::Refused {
                reason: "account_invalid".into(),
                retry: false,
            },
            SANDBOX_REFUSES => BankAnswer::Refused {
                reason: "account_not_found".into(),
                retry: false,
            },
            SANDBOX_FAILS_ONCE if s.attempts == 1 => {
                return BankAnswer::Refused {
                    reason: "bank_unavailable".into(),
                    retry: true,
                };
            }
            _ => paid,
        };
        s.answer = Some(answer.clone());
        answer
    }
}

impl Payouts for SandboxBank {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn pay<'a>(
        &'a self,
        payout_id: &'a str,
        account: &'a str,
        _amount_minor: i64,
    ) -> BoxFuture<'a, BankAnswer> {
        Box::pin(async move {
            if account == SANDBOX_SILENT {
                // Longer than any caller waits.
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
            self.answer(payout_id, account)
        })
    }

    fn returns(&self) -> BoxFuture<'_, Vec<Returned>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for (id, s) in self.lock().iter_mut() {
                if s.account == SANDBOX_RETURNS && matches!(s.answer, Some(BankAnswer::Paid { .. }))
                {
                    s.returned = true;
                    out.push(Returned {
                        payout_id: id.clone(),
                        reason: "account_closed".into(),
                    });
                }
            }
            out.sort_by(|a, b| a.payout_id.cmp(&b.payout_id));
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pay(b: &SandboxBank, id: &str, account: &str) -> BankAnswer {
        futures_lite(b.pay(id, account, 100))
    }

    /// Run a future that never waits.
    fn futures_lite<T>(f: BoxFuture<'_, T>) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(f)
    }

    #[test]
    fn each_sandbox_account_does_what_the_table_says() {
        let b = SandboxBank::new();
        assert!(matches!(
            pay(&b, "p1", SANDBOX_PAYS),
            BankAnswer::Paid { .. }
        ));
        // Asked again: the same answer, paid once.
        assert_eq!(pay(&b, "p1", SANDBOX_PAYS), pay(&b, "p1", SANDBOX_PAYS));
        assert_eq!(b.paid_to(SANDBOX_PAYS), 1);
        assert_eq!(
            pay(&b, "p2", SANDBOX_FAILS_ONCE),
            BankAnswer::Refused {
                reason: "bank_unavailable".into(),
                retry: true
            }
        );
        assert!(matches!(
            pay(&b, "p2", SANDBOX_FAILS_ONCE),
            BankAnswer::Paid { .. }
        ));
        assert_eq!(b.attempts("p2"), 2);
        assert!(matches!(
            pay(&b, "p3", SANDBOX_REFUSES),
            BankAnswer::Refused { retry: false, .. }
        ));
        assert!(matches!(
            pay(&b, "p4", SANDBOX_RETURNS),
            BankAnswer::Paid { .. }
        ));
        let back = futures_lite(b.returns());
        assert_eq!(
            back,
            vec![Returned {
                payout_id: "p4".into(),
                reason: "account_closed".into()
            }]
        );
        assert_eq!(
            futures_lite(b.returns()).len(),
            1,
            "reported until recorded"
        );
        assert!(matches!(
            pay(&b, "p5", "12ab"),
            BankAnswer::Refused { retry: false, .. }
        ));
    }
}
