//! Reconciliation: the sandbox processor's settlement file for a day
//! against the ledger. What agrees is matched; a refund the processor did
//! not answer shows until its retry; a file corrupted in each way gives
//! exactly that finding; a cut file is refused. Both stores.

use std::sync::atomic::AtomicBool;

use qrgate_core::day::BusinessDay;
use qrgate_gateway::money::Reconciliation;
use qrgate_processor::settlement::{self, RecordKind, RecordStatus};
use qrgate_processor::{
    AuthRequest, BoxFuture, CardDetails, Outcome, Processor, ProcessorError, Tokenized,
};

use super::*;

const DAY: &str = "2026-11-25";

/// The sandbox, with refunds that can be made to go unanswered.
struct Flaky {
    inner: Arc<Sandbox>,
    refunds_down: AtomicBool,
}

impl Processor for Flaky {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn tokenize<'a>(
        &'a self,
        card: CardDetails<'a>,
        today: (u16, u8),
    ) -> BoxFuture<'a, Result<Tokenized, qrgate_processor::CardError>> {
        self.inner.tokenize(card, today)
    }
    fn authorize<'a>(
        &'a self,
        req: AuthRequest<'a>,
    ) -> BoxFuture<'a, Result<Outcome, ProcessorError>> {
        self.inner.authorize(req)
    }
    fn query<'a>(
        &'a self,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Outcome>, ProcessorError>> {
        self.inner.query(request_id)
    }
    fn reverse<'a>(&'a self, request_id: &'a str) -> BoxFuture<'a, Result<(), ProcessorError>> {
        self.inner.reverse(request_id)
    }
    fn refund<'a>(
        &'a self,
        request_id: &'a str,
        refund_id: &'a str,
        amount_minor: i64,
    ) -> BoxFuture<'a, Result<(), ProcessorError>> {
        if self.refunds_down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(ProcessorError::Unavailable("no answer".into())) });
        }
        self.inner.refund(request_id, refund_id, amount_minor)
    }
    fn settlement_file<'a>(
        &'a self,
        from: Timestamp,
        until: Timestamp,
    ) -> BoxFuture<'a, Result<String, ProcessorError>> {
        self.inner.settlement_file(from, until)
    }
}

/// The references of a kind of finding.
fn refs(found: &[qrgate_gateway::money::Finding]) -> Vec<String> {
    found.iter().map(|f| f.reference.clone()).collect()
}

/// Every finding list but the one named is empty.
fn only(r: &Reconciliation, which: &str) -> Vec<String> {
    let lists = [
        ("missing_in_processor", &r.missing_in_processor),
        ("missing_in_ledger", &r.missing_in_ledger),
        ("amount_mismatches", &r.amount_mismatches),
        ("status_mismatches", &r.status_mismatches),
    ];
    for (name, list) in lists {
        if name != which {
            assert!(list.is_empty(), "{name} should be empty: {r:?}");
        }
    }
    lists
        .iter()
        .find(|(n, _)| *n == which)
        .map(|(_, l)| refs(l))
        .unwrap_or_default()
}

on_both!(
    the_processor_file_and_the_ledger_are_reconciled,
    |w: World| async move {
        let flaky = Arc::new(Flaky {
            inner: w.sandbox.clone(),
            refunds_down: AtomicBool::new(false),
        });
        let gw = w.node().await.with_processor(flaky.clone());
        let card = w.link(&w.consumer, "4242424242424242").await;
        let id = |v: Value| v["id"].as_str().unwrap().to_owned();
        let a = id(w
            .pay_order(&w.merchant, &w.consumer, "100.00", Some(&card))
            .await
            .unwrap());
        let b = id(w
            .pay_order(&w.merchant, &w.consumer, "50.00", Some(&card))
            .await
            .unwrap());
        let c = id(w
            .pay_order(&w.merchant, &w.consumer, "30.00", Some(&card))
            .await
            .unwrap());
        // A wallet payment never meets the card processor.
        w.charge(&w.device_token(), "7.00").await.unwrap();
        gw.refund(&w.merchant, &a, "20.00", "R1", None)
            .await
            .unwrap();
        gw.cancel(&w.merchant, &c, None).await.unwrap();
        // The processor does not answer this refund: it is recorded, and
        // the merchant is told to retry.
        flaky.refunds_down.store(true, Ordering::SeqCst);
        let unanswered = gw
            .refund(&w.merchant, &b, "10.00", "R2", None)
            .await
            .unwrap_err();
        assert_eq!(unanswered.code, "processor_unavailable");

        let report = gw.reconcile(&admin(), DAY, None).await.unwrap();
        assert_eq!(
            only(&report, "missing_in_processor"),
            [format!("{b}:R2")],
            "{report:?}"
        );
        assert_eq!(report.matched, 5, "a, b, c, a's refund, c's cancel");
        assert!(!report.agrees && !report.final_);
        // The retry reaches the processor: the day agrees.
        flaky.refunds_down.store(false, Ordering::SeqCst);
        gw.refund(&w.merchant, &b, "10.00", "R2", None)
            .await
            .unwrap();
        let report = gw.reconcile(&auditor(&w).await, DAY, None).await.unwrap();
        assert!(report.agrees, "{report:?}");
        assert_eq!(
            (
                report.matched,
                report.ledger_records,
                report.processor_records
            ),
            (6, 6, 6)
        );

        // The file, corrupted in each way, gives exactly that finding.
        let day = BusinessDay::parse(DAY).unwrap();
        let file = w
            .sandbox
            .settlement_file(day.starts_at(480), day.ends_at(480))
            .await
            .unwrap();
        let records = settlement::parse(&file).unwrap();
        let run = |records: Vec<settlement::SettlementRecord>| {
            let gw = &gw;
            async move {
                let text = settlement::render(&records);
                gw.reconcile(&admin(), DAY, Some(&text)).await.unwrap()
            }
        };
        let without_refund: Vec<_> = records
            .iter()
            .filter(|r| r.reference != format!("{a}:R1"))
            .cloned()
            .collect();
        assert_eq!(
            only(&run(without_refund).await, "missing_in_processor"),
            [format!("{a}:R1")]
        );
        let mut extra = records.clone();
        let mut stranger = records[0].clone();
        stranger.reference = "pay_nobody".into();
        stranger.authorization = "pay_nobody".into();
        extra.push(stranger);
        assert_eq!(only(&run(extra).await, "missing_in_ledger"), ["pay_nobody"]);
        let mut changed = records.clone();
        let bc = changed
            .iter_mut()
            .find(|r| r.kind == RecordKind::Capture && r.reference == b)
            .unwrap();
        bc.amount = qrgate_core::Money::from_minor(4_999, bc.amount.currency());
        let found = run(changed).await;
        assert_eq!(only(&found, "amount_mismatches"), std::slice::from_ref(&b));
        assert_eq!(
            (
                found.amount_mismatches[0].ledger_amount.as_deref(),
                found.amount_mismatches[0].processor_amount.as_deref()
            ),
            (Some("50.00"), Some("49.99"))
        );
        let mut failed = records.clone();
        let canceled = format!("{c}:cancel");
        failed
            .iter_mut()
            .find(|r| r.reference == canceled)
            .unwrap()
            .status = RecordStatus::Failed;
        assert_eq!(only(&run(failed).await, "status_mismatches"), [canceled]);
        // A record settled twice: the second is missing in the ledger
        // (its movement named), today and on another day alike.
        let mut twice = records.clone();
        twice.push(records[0].clone());
        let found = run(twice).await;
        assert_eq!(
            only(&found, "missing_in_ledger"),
            [records[0].reference.clone()]
        );
        assert_eq!(found.missing_in_ledger[0].ledger_day.as_deref(), Some(DAY));
        let again = settlement::render(&records[..1]);
        let next_day = gw
            .reconcile(&admin(), "2026-11-26", Some(&again))
            .await
            .unwrap();
        assert_eq!(
            only(&next_day, "missing_in_ledger"),
            [records[0].reference.clone()],
            "settled on its own day already: not a timing difference"
        );
        assert!(next_day.booked_other_day.is_empty());
        // A file cut short, or altered under its trailer, is refused.
        let cut: String = file.lines().take(3).map(|l| format!("{l}\n")).collect();
        let refused = gw.reconcile(&admin(), DAY, Some(&cut)).await.unwrap_err();
        assert_eq!(refused.code, "settlement_file_invalid");
        let altered = file.replacen(",100.00,", ",1000.00,", 1);
        assert_eq!(
            gw.reconcile(&admin(), DAY, Some(&altered))
                .await
                .unwrap_err()
                .code,
            "settlement_file_invalid"
        );
        // Merchants do not reconcile; a bad date is refused.
        assert_eq!(
            gw.reconcile(&w.merchant, DAY, None).await.unwrap_err().code,
            "forbidden"
        );
        assert_eq!(
            gw.reconcile(&admin(), "2026-13-01", None)
                .await
                .unwrap_err()
                .code,
            "invalid_request"
        );
        // A refund the processor does not answer today, retried tomorrow:
        // today's file lacks it for good; tomorrow's reconciliation finds
        // it booked on today.
        flaky.refunds_down.store(true, Ordering::SeqCst);
        gw.refund(&w.merchant, &b, "5.00", "R3", None)
            .await
            .unwrap_err();
        flaky.refunds_down.store(false, Ordering::SeqCst);
        w.clock
            .set(day.ends_at(480).checked_add_seconds(3600).unwrap());
        gw.refund(&w.merchant, &b, "5.00", "R3", None)
            .await
            .unwrap();
        let today = gw.reconcile(&admin(), DAY, None).await.unwrap();
        assert!(today.final_);
        assert_eq!(only(&today, "missing_in_processor"), [format!("{b}:R3")]);
        let next = gw.reconcile(&admin(), "2026-11-26", None).await.unwrap();
        assert!(next.agrees, "{next:?}");
        assert_eq!(refs(&next.booked_other_day), [format!("{b}:R3")]);
        assert_eq!(next.booked_other_day[0].ledger_day.as_deref(), Some(DAY));
        assert_eq!((next.ledger_records, next.processor_records), (0, 1));
    }
);

async fn auditor(w: &World) -> Principal {
    let k =
        w.gw.create_api_key(Some(&admin()), Role::Auditor, None)
            .await
            .unwrap();
    w.gw.authenticate(&k.secret).await.unwrap()
}
