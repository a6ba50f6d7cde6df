//! The sandbox card processor: deterministic, in the gateway's process,
//! its behaviour chosen by the card number ([`TEST_CARDS`]); it journals
//! what it settles for its daily settlement files.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qrgate_core::{Clock, Currency, Money, SystemClock, Timestamp};
use ring::rand::{SecureRandom, SystemRandom};

use crate::card::{self, brand_of, check_number};
use crate::settlement::{self, RecordKind, RecordStatus, SettlementRecord};
use crate::{
    AuthRequest, BoxFuture, CardDetails, CardError, CardFunding, DeclineReason, Outcome, Processor,
    ProcessorError, Tokenized,
};

/// How a sandbox test card behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Approve,
    DeclineInsufficientFunds,
    DeclineSuspectedFraud,
    /// The authorization is approved but its answer never arrives; a query finds it approved.
    TimeoutThenApproved,
    /// Neither the authorization nor a query ever answers; only a reversal settles it.
    TimeoutUnknown,
    /// Approved after [`Sandbox::delay`] (shorter than a sane deadline).
    ApproveAfterDelay,
}

impl Behaviour {
    fn tag(self) -> &'static str {
        match self {
            Behaviour::Approve => "approve",
            Behaviour::DeclineInsufficientFunds => "nofunds",
            Behaviour::DeclineSuspectedFraud => "fraud",
            Behaviour::TimeoutThenApproved => "lostanswer",
            Behaviour::TimeoutUnknown => "silent",
            Behaviour::ApproveAfterDelay => "slow",
        }
    }

    fn from_tag(s: &str) -> Option<Behaviour> {
        [
            Behaviour::Approve,
            Behaviour::DeclineInsufficientFunds,
            Behaviour::DeclineSuspectedFraud,
            Behaviour::TimeoutThenApproved,
            Behaviour::TimeoutUnknown,
            Behaviour::ApproveAfterDelay,
        ]
        .into_iter()
        .find(|b| b.tag() == s)
    }
}

/// A documented sandbox card.
#[derive(Debug, Clone, Copy)]
pub struct TestCard {
    pub number: &'static str,
    pub funding: CardFunding,
    pub behaviour: Behaviour,
    pub what: &'static str,
}

/// The sandbox's cards; any other number is refused at tokenization.
pub const TEST_CARDS: &[TestCard] = &[
    TestCard {
        number: "4242424242424242",
        funding: CardFunding::Credit,
        behaviour: Behaviour::Approve,
        what: "credit, approved",
    },
    TestCard {
        number: "6200000000000005",
        funding: CardFunding::Debit,
        behaviour: Behaviour::Approve,
        what: "debit, approved",
    },
    TestCard {
        number: "4000056655665556",
        funding: CardFunding::Debit,
        behaviour: Behaviour::Approve,
        what: "debit, approved",
    },
    TestCard {
        number: "4000000000009995",
        funding: CardFunding::Credit,
        behaviour: Behaviour::DeclineInsufficientFunds,
        what: "credit, declined: insufficient funds",
    },
    TestCard {
        number: "4100000000000019",
        funding: CardFunding::Credit,
        behaviour: Behaviour::DeclineSuspectedFraud,
        what: "credit, declined: suspected fraud",
    },
    TestCard {
        number: "4000000000000119",
        funding: CardFunding::Credit,
        behaviour: Behaviour::TimeoutThenApproved,
        what: "credit, the answer times out; a query finds it approved",
    },
    TestCard {
        number: "4000000000000127",
        funding: CardFunding::Credit,
        behaviour: Behaviour::TimeoutUnknown,
        what: "credit, the answer and every query time out; the gateway reverses it",
    },
    TestCard {
        number: "4000000000000259",
        funding: CardFunding::Credit,
        behaviour: Behaviour::ApproveAfterDelay,
        what: "credit, approved after a delay (1 s by default)",
    },
];

/// What the sandbox remembers about one request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxAuth {
    /// `None` while the request is lost in the sandbox (TimeoutUnknown) or
    /// was reversed before it arrived.
    pub outcome: Option<Outcome>,
    pub amount_minor: i64,
    pub reversed: bool,
    pub refunded_minor: i64,
    refund_ids: Vec<String>,
    hangs: bool,
}

/// A deterministic processor that lives in the gateway's process. Its
/// memory of authorizations is lost on restart (it is a sandbox); its
/// journal of what it settled (the body of its settlement files) is kept
/// in a file when it is given a directory, so `qrgate reconcile` in
/// another process, or after a restart, reads the same records.
pub struct Sandbox {
    auths: Mutex<HashMap<String, SandboxAuth>>,
    journal: Mutex<Journal>,
    journal_file: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    rng: SystemRandom,
    /// How long `ApproveAfterDelay` cards take.
    pub delay: Duration,
    /// How long the timing-out cards hang (longer than any deadline).
    pub hang: Duration,
    /// While set, every refund answers "unavailable" (an outage of the
    /// processor's refunds, to test that the gateway asks again).
    refunds_down: std::sync::atomic::AtomicBool,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new(Duration::from_secs(1))
    }
}

impl Sandbox {
    pub fn new(delay: Duration) -> Sandbox {
        Sandbox {
            auths: Mutex::new(HashMap::new()),
            journal: Mutex::new(Journal::default()),
            journal_file: None,
            clock: Arc::new(SystemClock),
            rng: SystemRandom::new(),
            delay,
            hang: Duration::from_secs(3600),
            refunds_down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Take the processor's refunds down (`true`) or bring them back.
    pub fn set_refunds_down(&self, down: bool) {
        self.refunds_down
            .store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// How long the timing-out cards hang (keep it above the caller's deadline).
    pub fn with_hang(mut self, hang: Duration) -> Sandbox {
        self.hang = hang;
        self
    }

    /// Stamp the records of the settlement files with this clock's time
    /// (the gateway's, so its business days and the files' agree).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Sandbox {
        self.clock = clock;
        self
    }

    /// Keep the journal in `dir/sandbox-settlement.csv` (created if
    /// missing; appended to, one record a line).
    pub fn with_journal_dir(mut self, dir: impl Into<PathBuf>) -> std::io::Result<Sandbox> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        self.journal_file = Some(dir.join(JOURNAL_FILE));
        Ok(self)
    }

    /// Write one settled record to the journal.
    fn settled(&self, kind: RecordKind, reference: &str, authorization: &str, amount_minor: i64) {
        let record = SettlementRecord {
            kind,
            reference: reference.to_owned(),
            authorization: authorization.to_owned(),
            amount: Money::from_minor(amount_minor, Currency::CNY),
            status: RecordStatus::Settled,
            at: self.clock.now(),
        };
        // One write of the whole line, under the journal's lock: lines
        // of this process never interleave, and an append of one small
        // buffer lands whole beside another process's.
        let mut journal = self
            .journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(path) = &self.journal_file {
            let written = append_line(path, &record.to_string());
            if let Err(e) = written {
                // The file no longer holds everything settled: its
                // settlement files would be short, so none is given.
                tracing::error!(error = %e, path = %path.display(), "the sandbox could not write its journal");
                journal.degraded = Some(e.to_string());
            }
        }
        journal.records.push(record);
    }

    /// The records settled in `[from, until)`, from the journal file when
    /// there is one (every process's), else from memory.
    fn records(
        &self,
        from: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<SettlementRecord>, ProcessorError> {
        let journal = self
            .journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = &journal.degraded {
            return Err(ProcessorError::Unavailable(format!(
                "the sandbox's journal missed a record ({e}); its settlement files would be short"
            )));
        }
        let all = match &self.journal_file {
            Some(path) => {
                let text = match std::fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(e) => return Err(ProcessorError::Unavailable(format!("journal: {e}"))),
                };
                // A line torn by a crash is left out, and said: its
                // record then shows as missing from the processor's file.
                text.lines()
                    .enumerate()
                    .filter_map(|(i, l)| match settlement::parse_record(i + 1, l) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            tracing::error!(error = %e, "the sandbox's journal has an unreadable line");
                            None
                        }
                    })
                    .collect::<Vec<_>>()
            }
            None => journal.records.clone(),
        };
        Ok(all
            .into_iter()
            .filter(|r| r.at >= from && r.at < until)
            .collect())
    }

    /// What the sandbox knows about a request id (for tests and audits).
    pub fn authorization(&self, request_id: &str) -> Option<SandboxAuth> {
        self.lock().get(request_id).cloned()
    }

    /// What the sandbox holds of payers' cards: approved, not reversed,
    /// less what was refunded (for tests that compare it with the ledger).
    pub fn held_minor(&self) -> i64 {
        self.lock()
            .values()
            .filter(|a| !a.reversed && matches!(a.outcome, Some(Outcome::Approved { .. })))
            .map(|a| a.amount_minor - a.refunded_minor)
            .sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SandboxAuth>> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.auths
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn approved(request_id: &str) -> Outcome {
        Outcome::Approved {
            authorization: format!("sbx_auth_{request_id}"),
        }
    }

    /// Record an outcome unless the request id was seen before (then the
    /// earlier answer stands, or a reversal's tombstone declines it).
    fn record(
        &self,
        request_id: &str,
        amount: i64,
        outcome: Option<Outcome>,
        hangs: bool,
    ) -> Option<Outcome> {
        let mut auths = self.lock();
        let mut captured = false;
        let entry = auths.entry(request_id.to_owned()).or_insert_with(|| {
            captured = matches!(outcome, Some(Outcome::Approved { .. }));
            SandboxAuth {
                outcome: outcome.clone(),
                amount_minor: amount,
                reversed: false,
                refunded_minor: 0,
                refund_ids: Vec::new(),
                hangs,
            }
        });
        if entry.reversed {
            return Some(Outcome::Declined(DeclineReason::Reversed));
        }
        let answer = entry.outcome.clone();
        drop(auths);
        // An approval is final here (no separate capture call): it
        // settles the day it is given.
        if captured {
            self.settled(RecordKind::Capture, request_id, request_id, amount);
        }
        answer
    }
}

fn behaviour_of(token: &str) -> Option<Behaviour> {
    let rest = token.strip_prefix("sbx_")?;
    let (tag, _) = rest.split_once('_')?;
    Behaviour::from_tag(tag)
}

impl Processor for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn tokenize<'a>(
        &'a self,
        card: CardDetails<'a>,
        today: (u16, u8),
    ) -> BoxFuture<'a, Result<Tokenized, CardError>> {
        Box::pin(async move {
            let number = check_number(card.number)?;
            card::check_expiry(card.exp_month, card.exp_year, today)?;
            let test = TEST_CARDS
                .iter()
                .find(|c| c.number == number)
                .ok_or(CardError::NotATestCard)?;
            let mut r = [0_u8; 8];
            self.rng.fill(&mut r).map_err(|_| CardError::Unavailable)?;
            let hex = hex::encode(r);
            Ok(Tokenized {
                token: format!("sbx_{}_{hex}", test.behaviour.tag()),
                brand: brand_of(&number),
                last4: number[number.len() - 4..].to_owned(),
                funding: test.funding,
            })
        })
    }

    fn authorize<'a>(
        &'a self,
        req: AuthRequest<'a>,
    ) -> BoxFuture<'a, Result<Outcome, ProcessorError>> {
        Box::pin(async move {
            let behaviour = behaviour_of(req.token).ok_or(ProcessorError::UnknownToken)?;
            let id = req.request_id;
            let amount = req.amount_minor;
            match behaviour {
                Behaviour::Approve => self
                    .record(id, amount, Some(Self::approved(id)), false)
                    .ok_or_else(|| ProcessorError::Unavailable("lost".into())),
                Behaviour::DeclineInsufficientFunds | Behaviour::DeclineSuspectedFraud => {
                    let reason = match behaviour {
                        Behaviour::DeclineInsufficientFunds => DeclineReason::InsufficientFunds,
                        _ => DeclineReason::SuspectedFraud,
                    };
                    self.record(id, amount, Some(Outcome::Declined(reason)), false)
                        .ok_or_else(|| ProcessorError::Unavailable("lost".into()))
                }
                Behaviour::ApproveAfterDelay => {
                    tokio::time::sleep(self.delay).await;
                    self.record(id, amount, Some(Self::approved(id)), false)
                        .ok_or_else(|| ProcessorError::Unavailable("lost".into()))
                }
                Behaviour::TimeoutThenApproved => {
                    let outcome = self.record(id, amount, Some(Self::approved(id)), false);
                    tokio::time::sleep(self.hang).await;
                    outcome.ok_or_else(|| ProcessorError::Unavailable("lost".into()))
                }
                Behaviour::TimeoutUnknown => {
                    self.record(id, amount, None, true);
                    tokio::time::sleep(self.hang).await;
                    Err(ProcessorError::Unavailable("no answer".into()))
                }
            }
        })
    }

    fn query<'a>(
        &'a self,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Outcome>, ProcessorError>> {
        Box::pin(async move {
            let seen = self.authorization(request_id);
            match seen {
                Some(a) if a.hangs && !a.reversed => {
                    tokio::time::sleep(self.hang).await;
                    Err(ProcessorError::Unavailable("no answer".into()))
                }
                Some(a) if a.reversed => Ok(Some(Outcome::Declined(DeclineReason::Reversed))),
                Some(a) => Ok(a.outcome),
                None => Ok(None),
            }
        })
    }

    fn reverse<'a>(&'a self, request_id: &'a str) -> BoxFuture<'a, Result<(), ProcessorError>> {
        Box::pin(async move {
            let mut auths = self.lock();
            let entry = auths
                .entry(request_id.to_owned())
                .or_insert_with(|| SandboxAuth {
                    outcome: None,
                    amount_minor: 0,
                    reversed: false,
                    refunded_minor: 0,
                    refund_ids: Vec::new(),
                    hangs: false,
                });
            // Reversing an approval gives back what is left of it, once;
            // reversing what was never approved moves nothing.
            let gives_back = (!entry.reversed
                && matches!(entry.outcome, Some(Outcome::Approved { .. })))
            .then_some(entry.amount_minor - entry.refunded_minor)
            .filter(|m| *m > 0);
            entry.reversed = true;
            drop(auths);
            if let Some(amount) = gives_back {
                self.settled(RecordKind::Reversal, request_id, request_id, amount);
            }
            Ok(())
        })
    }

    fn refund<'a>(
        &'a self,
        request_id: &'a str,
        refund_id: &'a str,
        amount_minor: i64,
    ) -> BoxFuture<'a, Result<(), ProcessorError>> {
        Box::pin(async move {
            if self.refunds_down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(ProcessorError::Unavailable("refunds are down".into()));
            }
            let mut auths = self.lock();
            let a = auths
                .get_mut(request_id)
                .filter(|a| !a.reversed && matches!(a.outcome, Some(Outcome::Approved { .. })))
                .ok_or_else(|| ProcessorError::UnknownAuthorization(request_id.to_owned()))?;
            if a.refund_ids.iter().any(|r| r == refund_id) {
                return Ok(());
            }
            let left = a.amount_minor - a.refunded_minor;
            if amount_minor > left {
                return Err(ProcessorError::RefundTooLarge {
                    request_id: request_id.to_owned(),
                    requested: amount_minor,
                    left,
                });
            }
            a.refunded_minor += amount_minor;
            a.refund_ids.push(refund_id.to_owned());
            drop(auths);
            self.settled(RecordKind::Refund, refund_id, request_id, amount_minor);
            Ok(())
        })
    }

    fn settlement_file<'a>(
        &'a self,
        from: Timestamp,
        until: Timestamp,
    ) -> BoxFuture<'a, Result<String, ProcessorError>> {
        Box::pin(async move { Ok(settlement::render(&self.records(from, until)?)) })
    }
}

/// Append `line` to the journal in one write; after a line a crash cut
/// short (no line break at the end), on a line of its own.
fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let len = f.metadata()?.len();
    let mut text = String::with_capacity(line.len() + 2);
    if len > 0 {
        let mut last = [0_u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    text.push_str(line);
    text.push('\n');
    f.write_all(text.as_bytes())
}

/// What the sandbox settled, and whether its file missed any of it.
#[derive(Default)]
struct Journal {
    records: Vec<SettlementRecord>,
    degraded: Option<String>,
}

/// The sandbox's journal file in its directory.
pub const JOURNAL_FILE: &str = "sandbox-settlement.csv";

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: (u16, u8) = (2026, 11);

    async fn token(s: &Sandbox, number: &str) -> Tokenized {
        s.tokenize(
            CardDetails {
                number,
                exp_month: 12,
                exp_year: 2030,
            },
            TODAY,
        )
        .await
        .unwrap()
    }

    fn req<'a>(id: &'a str, token: &'a str) -> AuthRequest<'a> {
        AuthRequest {
            request_id: id,
            token,
            amount_minor: 1000,
            currency: "CNY",
        }
    }

    #[tokio::test]
    async fn every_test_card_tokenizes_and_keeps_only_the_last_four() {
        let s = Sandbox::default();
        for c in TEST_CARDS {
            let t = token(&s, c.number).await;
            assert_eq!(t.last4, &c.number[c.number.len() - 4..]);
            assert_eq!(t.funding, c.funding);
            assert!(!t.token.contains(&c.number[..12]), "{}", t.token);
            assert_eq!(behaviour_of(&t.token), Some(c.behaviour));
        }
        let other = s
            .tokenize(
                CardDetails {
                    number: "4111111111111111",
                    exp_month: 12,
                    exp_year: 2030,
                },
                TODAY,
            )
            .await;
        assert_eq!(other, Err(CardError::NotATestCard));
    }

    #[tokio::test]
    async fn approvals_are_idempotent_and_declines_say_why() {
        let s = Sandbox::default();
        let ok = token(&s, "4242424242424242").await;
        let a = s.authorize(req("pay_1", &ok.token)).await.unwrap();
        assert_eq!(a, s.authorize(req("pay_1", &ok.token)).await.unwrap());
        assert!(matches!(a, Outcome::Approved { .. }));
        let nf = token(&s, "4000000000009995").await;
        assert_eq!(
            s.authorize(req("pay_2", &nf.token)).await.unwrap(),
            Outcome::Declined(DeclineReason::InsufficientFunds)
        );
        let fr = token(&s, "4100000000000019").await;
        assert_eq!(
            s.authorize(req("pay_3", &fr.token)).await.unwrap(),
            Outcome::Declined(DeclineReason::SuspectedFraud)
        );
        assert_eq!(
            s.authorize(req("pay_4", "tok_other")).await,
            Err(ProcessorError::UnknownToken)
        );
    }

    #[tokio::test]
    async fn a_lost_answer_is_found_by_query_and_a_silent_one_is_reversed() {
        let s = Sandbox::default().with_hang(Duration::from_millis(50));
        let lost = token(&s, "4000000000000119").await;
        let deadline = Duration::from_millis(10);
        assert!(
            tokio::time::timeout(deadline, s.authorize(req("pay_l", &lost.token)))
                .await
                .is_err()
        );
        assert!(matches!(
            s.query("pay_l").await.unwrap(),
            Some(Outcome::Approved { .. })
        ));
        let silent = token(&s, "4000000000000127").await;
        assert!(
            tokio::time::timeout(deadline, s.authorize(req("pay_s", &silent.token)))
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(deadline, s.query("pay_s"))
                .await
                .is_err()
        );
        s.reverse("pay_s").await.unwrap();
        assert!(s.authorization("pay_s").unwrap().reversed);
        // A reversal before the request arrives declines the late copy.
        s.reverse("pay_late").await.unwrap();
        let ok = token(&s, "4242424242424242").await;
        assert_eq!(
            s.authorize(req("pay_late", &ok.token)).await.unwrap(),
            Outcome::Declined(DeclineReason::Reversed)
        );
        assert_eq!(s.query("pay_never").await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_settlement_file_has_what_was_settled_once_each() {
        let clock = Arc::new(qrgate_core::ManualClock::new(Timestamp::from_unix_millis(
            1_796_000_000_000,
        )));
        let dir = std::env::temp_dir().join(format!(
            "qrgate-sbx-{}-{}",
            std::process::id(),
            clock.now().unix_millis()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Sandbox::default()
            .with_clock(clock.clone())
            .with_journal_dir(&dir)
            .unwrap();
        let ok = token(&s, "4242424242424242").await;
        s.authorize(req("pay_a", &ok.token)).await.unwrap();
        s.authorize(req("pay_a", &ok.token)).await.unwrap();
        s.refund("pay_a", "pay_a:R1", 300).await.unwrap();
        s.refund("pay_a", "pay_a:R1", 300).await.unwrap();
        s.authorize(req("pay_b", &ok.token)).await.unwrap();
        s.reverse("pay_b").await.unwrap();
        s.reverse("pay_b").await.unwrap();
        s.reverse("pay_never").await.unwrap();
        let nf = token(&s, "4000000000009995").await;
        s.authorize(req("pay_c", &nf.token)).await.unwrap();
        clock.advance_seconds(86_400);
        s.authorize(req("pay_d", &ok.token)).await.unwrap();
        let day = Timestamp::from_unix_millis(1_796_000_000_000);
        let end = day.checked_add_seconds(3600).unwrap();
        let text = s.settlement_file(day, end).await.unwrap();
        let records = settlement::parse(&text).unwrap();
        let kinds: Vec<_> = records
            .iter()
            .map(|r| (r.kind.as_str(), r.reference.as_str(), r.amount.minor()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("capture", "pay_a", 1000),
                ("refund", "pay_a:R1", 300),
                ("capture", "pay_b", 1000),
                ("reversal", "pay_b", 1000),
            ]
        );
        // Another process reading the same directory sees the same file.
        let other = Sandbox::default().with_journal_dir(&dir).unwrap();
        assert_eq!(other.settlement_file(day, end).await.unwrap(), text);
        // A line a crash cut short is left out; the next record is whole.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL_FILE))
            .unwrap()
            .write_all(b"capture,pay_torn,pay_to")
            .unwrap();
        s.authorize(req("pay_e", &ok.token)).await.unwrap();
        let later = settlement::parse(
            &s.settlement_file(day, end.checked_add_seconds(86_400).unwrap())
                .await
                .unwrap(),
        )
        .unwrap();
        assert!(later.iter().any(|r| r.reference == "pay_e"));
        assert!(later.iter().all(|r| r.reference != "pay_torn"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn refunds_stay_within_the_authorization_and_are_idempotent() {
        let s = Sandbox::default();
        let ok = token(&s, "4242424242424242").await;
        s.authorize(req("pay_r", &ok.token)).await.unwrap();
        s.refund("pay_r", "ref_1", 600).await.unwrap();
        s.refund("pay_r", "ref_1", 600).await.unwrap();
        assert_eq!(s.authorization("pay_r").unwrap().refunded_minor, 600);
        assert!(matches!(
            s.refund("pay_r", "ref_2", 401).await,
            Err(ProcessorError::RefundTooLarge { left: 400, .. })
        ));
        s.refund("pay_r", "ref_2", 400).await.unwrap();
        assert!(s.refund("pay_x", "ref_3", 1).await.is_err());
    }
}
