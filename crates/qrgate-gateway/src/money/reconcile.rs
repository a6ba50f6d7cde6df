//! Reconciliation: the card processor's settlement file for a business
//! day matched against the ledger's postings of that day that moved money
//! through the processor's clearing account (rule `QG-RECONCILIATION`).
//!
//! Each side names an operation by what the gateway sent the processor:
//! a capture by the authorization's request id, a refund by its refund
//! key (`<payment id>:<out_refund_no>`; a cancel, which gives the whole
//! amount back to the card, by `<payment id>:cancel`). A reversal is the
//! processor voiding an authorization the gateway gave up on; it has no
//! ledger movement of its own. Paired by (type,
//! reference), a record is
//! - matched: both sides, same amount, the processor says `settled`;
//! - an amount mismatch: both sides, amounts differ;
//! - a status mismatch: both sides, the processor says `failed`;
//! - missing in the processor's file: a ledger movement the processor did
//!   not settle that day (say a refund recorded while the processor did
//!   not answer: it stays missing until a retry reaches the processor; a
//!   retry on a later day is in that day's file, and that day's
//!   reconciliation lists it as booked on another day);
//! - booked on another day: a processor record whose movement the ledger
//!   has on another day (found through its payment), amounts equal;
//! - missing in the ledger: a processor record with no movement at all.
//!
//! Settled records are paired before failed ones, so a failed attempt and
//! its settled retry pair the retry. A capture and a reversal of the same
//! authorization and amount that have no movement (an authorization the
//! gateway voided after its answer was lost) net to nothing and are
//! counted as voided; a `failed` record with no movement moved nothing on
//! either side and is counted apart.

use std::collections::HashMap;

use serde::Serialize;

use qrgate_core::day::BusinessDay;
use qrgate_core::payment::PaymentDetails;
use qrgate_core::{AccountId, Money};
use qrgate_processor::settlement::{self, RecordKind, RecordStatus, SettlementRecord};
use qrgate_store::{CardMovement, CardMovementPage, Store};

use crate::views::amount;
use crate::{Error, Gateway, Kind, Principal, Role};

/// Ledger rows read per page.
const PAGE: i64 = 2000;

/// One disagreement between the ledger and the processor's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// `capture`, `refund` or `reversal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What the gateway named the operation with at the processor.
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The ledger's posting, when the ledger has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posting_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processor_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processor_status: Option<String>,
    /// For a movement booked on another day: the ledger's day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_day: Option<String>,
}

impl Reconciliation {
    /// No finding (timing differences are not findings).
    fn agrees_now(&self) -> bool {
        self.missing_in_processor.is_empty()
            && self.missing_in_ledger.is_empty()
            && self.amount_mismatches.is_empty()
            && self.status_mismatches.is_empty()
    }
}

/// What a day's reconciliation found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"object": "reconciliation", "date": "2026-11-25", "processor": "sandbox", "final": true, "ledger_records": 3, "processor_records": 3, "matched": 3, "voided": 0, "agrees": true, "failed_without_movement": 0, "missing_in_processor": [], "missing_in_ledger": [], "amount_mismatches": [], "status_mismatches": [], "booked_other_day": []}))]
pub struct Reconciliation {
    pub object: &'static str,
    pub date: String,
    pub processor: String,
    /// The day is over: the ledger's side of it no longer changes.
    #[serde(rename = "final")]
    pub final_: bool,
    pub ledger_records: usize,
    pub processor_records: usize,
    pub matched: usize,
    pub voided: usize,
    /// Failed processor records with no movement: nothing moved anywhere.
    pub failed_without_movement: usize,
    /// No findings.
    pub agrees: bool,
    pub missing_in_processor: Vec<Finding>,
    pub missing_in_ledger: Vec<Finding>,
    pub amount_mismatches: Vec<Finding>,
    pub status_mismatches: Vec<Finding>,
    /// Timing: records the ledger has on another day.
    pub booked_other_day: Vec<Finding>,
}

/// One ledger movement through the processor, keyed as the file keys it.
struct LedgerItem {
    kind: RecordKind,
    reference: String,
    payment_id: Option<String>,
    posting_id: String,
    amount_minor: i64,
}

impl<S: Store> Gateway<S> {
    /// Reconcile business day `date` against `file` (the processor's
    /// settlement file as delivered), or, without one, against the file
    /// the gateway's processor gives for the day. Admins and auditors.
    pub async fn reconcile(
        &self,
        p: &Principal,
        date: &str,
        file: Option<&str>,
    ) -> Result<Reconciliation, Error> {
        p.require(&[Role::Admin, Role::Auditor])?;
        let day = BusinessDay::parse(date)
            .map_err(|e| Error::bad_request("invalid_request", e.to_string()))?;
        let offset = self.limits.business_offset_minutes;
        let (from, until) = (day.starts_at(offset), day.ends_at(offset));
        let fetched;
        let text = match file {
            Some(t) => t,
            None => {
                fetched = self
                    .processor_call(self.processor.settlement_file(from, until))
                    .await?;
                fetched.as_str()
            }
        };
        let records = settlement::parse(text).map_err(|e| {
            Error::new(
                Kind::Unprocessable,
                "settlement_file_invalid",
                format!("{e}; nothing was reconciled"),
            )
        })?;
        let ledger = self.card_ledger(from, until).await?;
        let mut report = matched(&ledger, &records);
        self.other_days(day, &mut report).await?;
        report.date = day.to_string();
        report.processor = self.processor.name().to_owned();
        report.final_ = self.now() >= until;
        Ok(report)
    }

    /// A processor call within the processor deadline, its failure said
    /// as the gateway says a processor's.
    async fn processor_call<T>(
        &self,
        call: impl Future<Output = Result<T, qrgate_processor::ProcessorError>>,
    ) -> Result<T, Error> {
        let unavailable = |m: String| {
            Error::new(
                Kind::Unavailable,
                "processor_unavailable",
                format!("the card processor did not give its settlement file: {m}; retry later"),
            )
        };
        match tokio::time::timeout(self.processor_timeout_for_files(), call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(e.to_string())),
            Err(_) => Err(unavailable("it did not answer in time".into())),
        }
    }

    /// Look for each record missing in the day's ledger among its
    /// payment's movements of other days (a payment id is the start of
    /// every reference: `pay_…`, `pay_….confirm.…`, `pay_…:<number>`). It
    /// is booked on another day only when that day's own file does not
    /// have it too: a second settlement of a movement (today's, or one
    /// its own day's file already settled) stays missing in the ledger,
    /// with the movement named.
    async fn other_days(&self, day: BusinessDay, report: &mut Reconciliation) -> Result<(), Error> {
        let offset = self.limits.business_offset_minutes;
        let clearing = AccountId::card_clearing(self.processor.name(), crate::CURRENCY);
        let mut files: HashMap<BusinessDay, Option<Vec<SettlementRecord>>> = HashMap::new();
        for mut f in std::mem::take(&mut report.missing_in_ledger) {
            let payment_id = f.reference.split(['.', ':']).next().unwrap_or_default();
            let mut found = None;
            for m in self.store.card_movements_of(&clearing, payment_id).await? {
                let item = ledger_item(&m)?;
                if item.kind.as_str() == f.kind && item.reference == f.reference {
                    found = Some((item, m.at));
                    break;
                }
            }
            let Some((item, at)) = found else {
                report.missing_in_ledger.push(f);
                continue;
            };
            let ledger_amount = amount(item.amount_minor, crate::CURRENCY);
            let same = f.processor_amount.as_deref() == Some(ledger_amount.as_str());
            let booked = BusinessDay::of(at, offset);
            f.payment_id = item.payment_id;
            f.posting_id = Some(item.posting_id);
            f.ledger_amount = Some(ledger_amount);
            f.ledger_day = Some(booked.to_string());
            if booked == day {
                report.missing_in_ledger.push(f);
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = files.entry(booked) {
                let file = self
                    .processor_call(
                        self.processor
                            .settlement_file(booked.starts_at(offset), booked.ends_at(offset)),
                    )
                    .await
                    .ok()
                    .and_then(|t| settlement::parse(&t).ok());
                slot.insert(file);
            }
            let settled_there = files.get(&booked).and_then(Option::as_ref).map(|records| {
                records.iter().any(|r| {
                    r.kind == item.kind
                        && r.reference == f.reference
                        && r.status == RecordStatus::Settled
                })
            });
            match (settled_there, same) {
                (Some(false), true) => report.booked_other_day.push(f),
                (Some(false), false) => report.amount_mismatches.push(f),
                // Settled on its own day too, or that day's file unread:
                // not a timing difference.
                _ => report.missing_in_ledger.push(f),
            }
        }
        report.agrees = report.agrees_now();
        Ok(())
    }

    /// A file takes longer than an authorization: ten times its deadline.
    fn processor_timeout_for_files(&self) -> std::time::Duration {
        self.processor_timeout.saturating_mul(10)
    }

    /// Every movement of the day through the processor's clearing
    /// account, keyed as the processor names them.
    async fn card_ledger(
        &self,
        from: qrgate_core::Timestamp,
        until: qrgate_core::Timestamp,
    ) -> Result<Vec<LedgerItem>, Error> {
        let mut page = CardMovementPage {
            clearing: AccountId::card_clearing(self.processor.name(), crate::CURRENCY),
            from,
            until,
            after: None,
            limit: PAGE,
        };
        let mut items = Vec::new();
        loop {
            let rows = self.store.card_movements(&page).await?;
            let Some(last) = rows.last() else {
                return Ok(items);
            };
            page.after = Some((last.at, last.posting_id.clone()));
            for m in &rows {
                items.push(ledger_item(m)?);
            }
        }
    }
}

/// How the ledger names a movement at the processor.
fn ledger_item(m: &CardMovement) -> Result<LedgerItem, Error> {
    let corrupt = |what: &str| {
        Error::internal(format!(
            "posting {} moved the card clearing account but {what}",
            m.posting_id
        ))
    };
    let details: PaymentDetails = m
        .details
        .as_deref()
        .ok_or_else(|| corrupt("names no payment"))
        .and_then(|d| {
            serde_json::from_str(d).map_err(|_| corrupt("its payment's details do not read"))
        })?;
    let authorization = details
        .funding
        .hold()
        .ok_or_else(|| corrupt("its payment holds no authorization"))?
        .to_owned();
    let payment_id = m.payment_id.clone();
    let pay = payment_id
        .as_deref()
        .ok_or_else(|| corrupt("names no payment"))?;
    let (kind, reference) = match m.kind.as_str() {
        "payment" => (RecordKind::Capture, authorization),
        // A cancel gives the whole amount back to the card as a refund.
        "reversal" => (RecordKind::Refund, crate::refunds::cancel_key(pay)),
        "refund" => {
            let number = m
                .out_refund_no
                .as_deref()
                .ok_or_else(|| corrupt("its refund has no number"))?;
            (RecordKind::Refund, crate::refunds::refund_key(pay, number))
        }
        other => return Err(corrupt(&format!("is a {other} posting"))),
    };
    Ok(LedgerItem {
        kind,
        reference,
        payment_id,
        posting_id: m.posting_id.clone(),
        amount_minor: m.amount_minor.abs(),
    })
}

/// Pair the two sides and say what differs (the date and processor are
/// the caller's to fill in).
fn matched(ledger: &[LedgerItem], records: &[SettlementRecord]) -> Reconciliation {
    let cny = |m: i64| amount(m, crate::CURRENCY);
    let mut open: HashMap<(RecordKind, &str), &LedgerItem> = HashMap::new();
    let mut report = Reconciliation {
        object: "reconciliation",
        date: String::new(),
        processor: String::new(),
        final_: false,
        ledger_records: ledger.len(),
        processor_records: records.len(),
        matched: 0,
        voided: 0,
        failed_without_movement: 0,
        agrees: false,
        missing_in_processor: Vec::new(),
        missing_in_ledger: Vec::new(),
        amount_mismatches: Vec::new(),
        status_mismatches: Vec::new(),
        booked_other_day: Vec::new(),
    };
    let from_ledger = |l: &LedgerItem| Finding {
        kind: l.kind.as_str().into(),
        reference: l.reference.clone(),
        payment_id: l.payment_id.clone(),
        posting_id: Some(l.posting_id.clone()),
        ledger_amount: Some(cny(l.amount_minor)),
        processor_amount: None,
        processor_status: None,
        ledger_day: None,
    };
    for l in ledger {
        // Two movements under one name: the second has no record to pair.
        match open.entry((l.kind, l.reference.as_str())) {
            std::collections::hash_map::Entry::Occupied(_) => {
                report.missing_in_processor.push(from_ledger(l));
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(l);
            }
        }
    }
    let mut unpaired: Vec<&SettlementRecord> = Vec::new();
    // Settled records first: a failed attempt and its settled retry pair
    // the retry with the movement.
    let settled_first = records
        .iter()
        .filter(|r| r.status == RecordStatus::Settled)
        .chain(records.iter().filter(|r| r.status != RecordStatus::Settled));
    for r in settled_first {
        let Some(l) = open.remove(&(r.kind, r.reference.as_str())) else {
            unpaired.push(r);
            continue;
        };
        let finding = Finding {
            processor_amount: Some(r.amount.to_decimal_string()),
            processor_status: Some(r.status.as_str().into()),
            ..from_ledger(l)
        };
        if r.status == RecordStatus::Failed {
            report.status_mismatches.push(finding);
        } else if r.amount.minor() != l.amount_minor || r.amount.currency() != crate::CURRENCY {
            report.amount_mismatches.push(finding);
        } else {
            report.matched += 1;
        }
    }
    let mut left: Vec<_> = open.into_values().collect();
    left.sort_by(|a, b| a.posting_id.cmp(&b.posting_id));
    report
        .missing_in_processor
        .extend(left.into_iter().map(from_ledger));
    voided(&mut unpaired, &mut report);
    for r in unpaired {
        if r.status == RecordStatus::Failed {
            // Nothing moved on either side.
            report.failed_without_movement += 1;
            continue;
        }
        report.missing_in_ledger.push(Finding {
            kind: r.kind.as_str().into(),
            reference: r.reference.clone(),
            payment_id: None,
            posting_id: None,
            ledger_amount: None,
            processor_amount: Some(r.amount.to_decimal_string()),
            processor_status: Some(r.status.as_str().into()),
            ledger_day: None,
        });
    }
    report.agrees = report.agrees_now();
    report
}

/// Take out of `unpaired` each settled capture that a settled reversal of
/// the same authorization and amount undid (counted as voided).
fn voided(unpaired: &mut Vec<&SettlementRecord>, report: &mut Reconciliation) {
    let settled = |r: &SettlementRecord, k| r.kind == k && r.status == RecordStatus::Settled;
    let mut reversals: HashMap<(&str, Money), usize> = HashMap::new();
    for r in unpaired.iter() {
        if settled(r, RecordKind::Reversal) {
            *reversals
                .entry((r.reference.as_str(), r.amount))
                .or_default() += 1;
        }
    }
    let mut undone: HashMap<(String, Money), usize> = HashMap::new();
    unpaired.retain(|r| {
        if !settled(r, RecordKind::Capture) {
            return true;
        }
        match reversals.get_mut(&(r.reference.as_str(), r.amount)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                *undone.entry((r.reference.clone(), r.amount)).or_default() += 1;
                report.voided += 1;
                false
            }
            _ => true,
        }
    });
    unpaired.retain(|r| {
        if !settled(r, RecordKind::Reversal) {
            return true;
        }
        match undone.get_mut(&(r.reference.clone(), r.amount)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use qrgate_core::{Currency, Timestamp};

    fn item(kind: RecordKind, reference: &str, minor: i64) -> LedgerItem {
        LedgerItem {
            kind,
            reference: reference.into(),
            payment_id: Some("pay_1".into()),
            posting_id: format!("pst_{reference}"),
            amount_minor: minor,
        }
    }

    fn rec(
        kind: RecordKind,
        reference: &str,
        minor: i64,
        status: RecordStatus,
    ) -> SettlementRecord {
        SettlementRecord {
            kind,
            reference: reference.into(),
            authorization: "pay_1".into(),
            amount: Money::from_minor(minor, Currency::CNY),
            status,
            at: Timestamp::from_unix_millis(0),
        }
    }

    #[test]
    fn each_disagreement_is_found_once() {
        use RecordKind::*;
        use RecordStatus::*;
        let ledger = [
            item(Capture, "a", 100),
            item(Capture, "b", 200),
            item(Refund, "b:R1", 50),
            item(Capture, "c", 300),
            item(Capture, "d", 400),
        ];
        let records = [
            rec(Capture, "a", 100, Settled),
            rec(Capture, "b", 201, Settled),
            rec(Refund, "b:R1", 50, Failed),
            rec(Capture, "e", 500, Settled),
            rec(Capture, "v", 700, Settled),
            rec(Reversal, "v", 700, Settled),
            rec(Capture, "f", 900, Failed),
        ];
        let r = matched(&ledger, &records);
        assert_eq!(
            (r.matched, r.voided, r.failed_without_movement),
            (1, 1, 1),
            "a; v voided; f failed with nothing moved"
        );
        let refs = |f: &[Finding]| f.iter().map(|x| x.reference.clone()).collect::<Vec<_>>();
        assert_eq!(refs(&r.amount_mismatches), ["b"]);
        assert_eq!(refs(&r.status_mismatches), ["b:R1"]);
        assert_eq!(refs(&r.missing_in_processor), ["c", "d"]);
        assert_eq!(refs(&r.missing_in_ledger), ["e"]);
        assert!(!r.agrees);
        let clean = matched(&ledger[..1], &records[..1]);
        assert!(clean.agrees);
    }

    #[test]
    fn a_failed_attempt_and_its_settled_retry_pair_the_retry() {
        use RecordKind::*;
        let ledger = [
            item(Refund, "a:R1", 100),
            item(Capture, "x", 5),
            item(Capture, "x", 5),
        ];
        let records = [
            rec(Refund, "a:R1", 100, RecordStatus::Failed),
            rec(Refund, "a:R1", 100, RecordStatus::Settled),
            rec(Capture, "x", 5, RecordStatus::Settled),
        ];
        let r = matched(&ledger, &records);
        assert_eq!((r.matched, r.failed_without_movement), (2, 1), "{r:?}");
        // Two movements under one name: one pairs, the other is missing.
        assert_eq!(r.missing_in_processor.len(), 1);
        assert!(r.status_mismatches.is_empty());
    }

    #[test]
    fn a_reversal_without_its_capture_is_not_voided() {
        use RecordKind::*;
        let records = [
            rec(Reversal, "v", 700, RecordStatus::Settled),
            rec(Capture, "w", 700, RecordStatus::Settled),
        ];
        let r = matched(&[], &records);
        assert_eq!(r.voided, 0);
        assert_eq!(r.missing_in_ledger.len(), 2);
    }
}
