//! A card processor's daily settlement file: every capture, refund and
//! reversal it settled in one day, as the acquirer sends it to the
//! gateway's operator, who matches it against the ledger
//! (`qrgate reconcile`).
//!
//! The format is CSV, one record a line, with a header and a trailer:
//!
//! ```text
//! type,reference,authorization,amount,currency,status,at
//! capture,pay_…,pay_…,12.30,CNY,settled,2026-12-07T02:00:00.000Z
//! refund,pay_…:R1,pay_…,6.50,CNY,settled,2026-12-07T02:05:00.000Z
//! reversal,pay_…,pay_…,8.00,CNY,settled,2026-12-07T02:06:00.000Z
//! trailer,3,12.30,6.50,8.00
//! ```
//!
//! `reference` is what the gateway named the operation with: the
//! authorization's request id for a capture and a reversal, the refund key
//! for a refund; `authorization` is the request id the operation belongs
//! to. Both are visible ASCII, with `%` and `,` written `%25` and `%2C` (a
//! merchant's refund number may hold a comma). Amounts are positive
//! decimal strings in major units of CNY; the type gives the direction.
//! `status` is `settled` (the money moved) or `failed` (the processor took
//! the request but did not move the money). The trailer counts the records
//! and totals each type, so a truncated or altered file is refused rather
//! than read short. A byte-order mark before the header and empty lines
//! after the trailer are allowed.

use std::fmt;

use qrgate_core::{Currency, Money, Timestamp};

/// The header line every file starts with.
pub const HEADER: &str = "type,reference,authorization,amount,currency,status,at";

/// What a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Capture,
    Refund,
    Reversal,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Capture => "capture",
            RecordKind::Refund => "refund",
            RecordKind::Reversal => "reversal",
        }
    }

    fn parse(s: &str) -> Option<RecordKind> {
        match s {
            "capture" => Some(RecordKind::Capture),
            "refund" => Some(RecordKind::Refund),
            "reversal" => Some(RecordKind::Reversal),
            _ => None,
        }
    }
}

/// Whether the processor moved the money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordStatus {
    Settled,
    Failed,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Settled => "settled",
            RecordStatus::Failed => "failed",
        }
    }
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRecord {
    pub kind: RecordKind,
    pub reference: String,
    pub authorization: String,
    pub amount: Money,
    pub status: RecordStatus,
    pub at: Timestamp,
}

/// Why a file was refused: the line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("settlement file line {line}: {problem}")]
pub struct FileError {
    pub line: usize,
    pub problem: String,
}

fn refuse(line: usize, problem: impl Into<String>) -> FileError {
    FileError {
        line,
        problem: problem.into(),
    }
}

/// References and request ids: 1 to 128 visible ASCII characters once
/// decoded (`%25` is `%`, `%2C` is `,`; no other `%`).
fn checked_ref(line: usize, what: &str, s: &str) -> Result<String, FileError> {
    let bad = || {
        refuse(
            line,
            format!("{what} must be 1 to 128 visible characters (% and , written %25 and %2C)"),
        )
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("%25") => out.push('%'),
            Some("%2C") => out.push(','),
            _ => return Err(bad()),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() || out.len() > 128 || !out.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(out)
}

/// A reference as a cell: `%` and `,` escaped.
fn ref_cell(s: &str) -> String {
    s.replace('%', "%25").replace(',', "%2C")
}

/// The totals a trailer states: records, then captured, refunded and
/// reversed amounts in minor units; `None` when a total would overflow.
fn totals(records: &[SettlementRecord]) -> Option<(usize, [i64; 3])> {
    let mut sums = [0_i64; 3];
    for r in records {
        let i = r.kind as usize;
        sums[i] = sums[i].checked_add(r.amount.minor())?;
    }
    Some((records.len(), sums))
}

/// Read a whole file: every line must be well formed and the trailer must
/// agree with the records above it.
pub fn parse(text: &str) -> Result<Vec<SettlementRecord>, FileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, HEADER)) => {}
        _ => return Err(refuse(1, format!("the first line must be {HEADER:?}"))),
    }
    let mut records = Vec::new();
    let mut trailer = None;
    for (n, line) in lines {
        if trailer.is_some() {
            if line.is_empty() {
                continue;
            }
            return Err(refuse(n, "nothing may follow the trailer"));
        }
        let cells: Vec<&str> = line.split(',').collect();
        if cells.first() == Some(&"trailer") {
            trailer = Some((n, cells));
            continue;
        }
        records.push(record(n, &cells)?);
    }
    let Some((n, cells)) = trailer else {
        return Err(refuse(
            text.lines().count(),
            "the file ends without its trailer: it is cut short",
        ));
    };
    let figures = totals(&records)
        .ok_or_else(|| refuse(n, "a type's total passes what an amount can hold"))?;
    let stated = trailer_figures(n, &cells)?;
    if stated != figures {
        return Err(refuse(
            n,
            "the trailer does not agree with the records (count or totals differ): the file was altered or cut",
        ));
    }
    Ok(records)
}

fn record(n: usize, cells: &[&str]) -> Result<SettlementRecord, FileError> {
    let [kind, reference, authorization, amount, currency, status, at] = cells else {
        return Err(refuse(
            n,
            format!("a record has 7 cells; this line has {}", cells.len()),
        ));
    };
    let kind = RecordKind::parse(kind)
        .ok_or_else(|| refuse(n, "type must be capture, refund or reversal"))?;
    if *currency != "CNY" {
        return Err(refuse(
            n,
            format!("currency {currency:?}: a file is in CNY"),
        ));
    }
    let currency = Currency::CNY;
    let amount =
        Money::parse_amount(amount, currency).map_err(|e| refuse(n, format!("amount: {e}")))?;
    let status = match *status {
        "settled" => RecordStatus::Settled,
        "failed" => RecordStatus::Failed,
        _ => return Err(refuse(n, "status must be settled or failed")),
    };
    let at =
        Timestamp::parse_rfc3339(at).ok_or_else(|| refuse(n, "at must be an RFC 3339 time"))?;
    Ok(SettlementRecord {
        kind,
        reference: checked_ref(n, "reference", reference)?,
        authorization: checked_ref(n, "authorization", authorization)?,
        amount,
        status,
        at,
    })
}

fn trailer_figures(n: usize, cells: &[&str]) -> Result<(usize, [i64; 3]), FileError> {
    let [_, count, captured, refunded, reversed] = cells else {
        return Err(refuse(
            n,
            "the trailer is trailer,records,captured,refunded,reversed",
        ));
    };
    let count = count
        .parse::<usize>()
        .map_err(|_| refuse(n, "the trailer's record count is not a number"))?;
    let mut sums = [0_i64; 3];
    for (i, s) in [captured, refunded, reversed].into_iter().enumerate() {
        sums[i] = if *s == "0.00" {
            0
        } else {
            Money::parse_amount(s, Currency::CNY)
                .map_err(|e| refuse(n, format!("trailer total: {e}")))?
                .minor()
        };
    }
    Ok((count, sums))
}

/// One record as its line (without the line break).
impl fmt::Display for SettlementRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{},{},{},{}",
            self.kind.as_str(),
            ref_cell(&self.reference),
            ref_cell(&self.authorization),
            self.amount.to_decimal_string(),
            self.amount.currency(),
            self.status.as_str(),
            self.at.to_rfc3339()
        )
    }
}

/// The whole file for these records, header and trailer included.
pub fn render(records: &[SettlementRecord]) -> String {
    let mut out = format!("{HEADER}\n");
    for r in records {
        out.push_str(&r.to_string());
        out.push('\n');
    }
    // Records hold positive i64 amounts: a total past i64 is shown at the
    // largest, which the reader then refuses.
    let (count, sums) = totals(records).unwrap_or((records.len(), [i64::MAX; 3]));
    let total = |m: i64| Money::from_minor(m, Currency::CNY).to_decimal_string();
    out.push_str(&format!(
        "trailer,{count},{},{},{}\n",
        total(sums[0]),
        total(sums[1]),
        total(sums[2])
    ));
    out
}

/// Read one journal line back (the body of a file, as the sandbox keeps it).
pub fn parse_record(n: usize, line: &str) -> Result<SettlementRecord, FileError> {
    record(n, &line.split(',').collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(kind: RecordKind, reference: &str, minor: i64) -> SettlementRecord {
        SettlementRecord {
            kind,
            reference: reference.into(),
            authorization: "pay_1".into(),
            amount: Money::from_minor(minor, Currency::CNY),
            status: RecordStatus::Settled,
            at: Timestamp::from_unix_millis(1_796_000_000_000),
        }
    }

    #[test]
    fn commas_and_percents_in_references_survive() {
        let records = vec![rec(RecordKind::Refund, "pay_1:a,b%2C", 100)];
        let text = render(&records);
        assert!(text.contains("pay_1:a%2Cb%252C"), "{text}");
        assert_eq!(parse(&text).unwrap(), records);
        // With a byte-order mark and a blank line after the trailer.
        assert_eq!(parse(&format!("\u{feff}{text}\n")).unwrap(), records);
        // Totals that would overflow are refused, not saturated.
        let big = vec![
            rec(RecordKind::Capture, "a", i64::MAX),
            rec(RecordKind::Capture, "b", i64::MAX),
        ];
        assert!(parse(&render(&big)).is_err());
    }

    #[test]
    fn a_file_reads_back_and_a_cut_or_altered_one_is_refused() {
        let records = vec![
            rec(RecordKind::Capture, "pay_1", 1230),
            rec(RecordKind::Refund, "pay_1:R1", 650),
            rec(RecordKind::Reversal, "pay_2", 800),
        ];
        let text = render(&records);
        assert!(text.ends_with("trailer,3,12.30,6.50,8.00\n"), "{text}");
        assert_eq!(parse(&text).unwrap(), records);
        // Cut short: no trailer.
        let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert!(parse(&cut).unwrap_err().problem.contains("cut short"));
        // A record dropped, the trailer left: refused.
        let dropped = text.replace("refund,pay_1:R1,pay_1,6.50,CNY,settled,", "x");
        assert!(parse(&dropped).is_err());
        let without: String = text
            .lines()
            .filter(|l| !l.starts_with("refund,"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(parse(&without).unwrap_err().problem.contains("trailer"));
        // An amount changed, the trailer left: refused.
        assert!(parse(&text.replace(",12.30,CNY", ",12.31,CNY")).is_err());
        for bad in [
            "",
            "type,reference\n",
            &text.replace("capture,", "charge,"),
            &text.replace(",CNY,settled", ",XXX,settled"),
            &text.replace(",CNY,settled", ",USD,settled"),
            &text.replace("pay_1:R1", "pay_1%2Z"),
            &text.replace("settled,2026", "maybe,2026"),
            &text.replace(",12.30,", ",-12.30,"),
            &text.replace("pay_1:R1", "pay 1"),
            &text.replace("pay_1:R1", "pay,1"),
            &format!("{text}capture,x,y,1.00,CNY,settled,2026-01-01T00:00:00Z\n"),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Whatever the records, the file reads back to them.
        #[test]
        fn render_then_parse_is_the_identity(
            items in proptest::collection::vec((0_u8..3, "[a-z0-9_:,%]{1,20}", 1_i64..10_000_000, any::<bool>(), 0_i64..4_000_000_000_000), 0..30)
        ) {
            let records: Vec<SettlementRecord> = items.into_iter().map(|(k, r, m, ok, at)| SettlementRecord {
                kind: [RecordKind::Capture, RecordKind::Refund, RecordKind::Reversal][usize::from(k)],
                reference: r.clone(),
                authorization: r,
                amount: Money::from_minor(m, Currency::CNY),
                status: if ok { RecordStatus::Settled } else { RecordStatus::Failed },
                at: Timestamp::from_unix_millis(at),
            }).collect();
            prop_assert_eq!(parse(&render(&records)).unwrap(), records);
        }

        /// Any text: refused or read, never a panic.
        #[test]
        fn any_text_is_read_or_refused(text in "(type,reference,authorization,amount,currency,status,at\n)?[a-z0-9,.:_\n-]{0,200}") {
            let _ = parse(&text);
        }
    }
}
