//! The strict EMVCo MPM check (`--profile emvco`): every departure from the
//! EMVCo Merchant-Presented Mode data objects, reported as findings. Parsing
//! never refuses a code for these; real schemes depart from EMVCo on purpose.

use serde::Serialize;

use qrgate_core::Currency;

use super::parse::{Field, Payload, Tag};

/// EMVCo's upper bound on a payload, in characters.
pub const MAX_PAYLOAD_CHARS: usize = 512;

/// One departure from the EMVCo profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable snake_case code.
    pub code: &'static str,
    /// "52" or "26.00"; absent for whole-payload findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub message: String,
}

fn finding(code: &'static str, tag: Option<String>, message: impl Into<String>) -> Finding {
    Finding {
        code,
        tag,
        message: message.into(),
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// EMV amount format: digits with at most one '.', at most 13 characters.
pub fn is_emv_amount(s: &str) -> bool {
    let n = s.chars().count();
    if n == 0 || n > 13 {
        return false;
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    is_digits(int) && frac.is_none_or(|f| f.is_empty() || is_digits(f))
}

/// Check a parsed payload against the EMVCo MPM profile. Empty means it
/// conforms.
pub fn check_emvco(p: &Payload) -> Vec<Finding> {
    let mut out = Vec::new();
    check_frame(p, &mut out);
    check_amount_fields(p, &mut out);
    check_place(p, &mut out);
    for f in p.fields() {
        check_template(f, &mut out);
    }
    out
}

/// A finding's location when it is a top-level tag.
fn top(t: Tag) -> Option<String> {
    Some(t.to_string())
}

/// Length, format indicator, point of initiation, and the fields EMVCo
/// makes mandatory.
fn check_frame(p: &Payload, out: &mut Vec<Finding>) {
    if p.char_len() > MAX_PAYLOAD_CHARS {
        out.push(finding(
            "payload_too_long",
            None,
            format!(
                "payload is {} characters; EMVCo allows at most {MAX_PAYLOAD_CHARS}",
                p.char_len()
            ),
        ));
    }
    match p.value(0) {
        Some("01") => {}
        Some(v) => out.push(finding(
            "format_indicator",
            top(Tag::PAYLOAD_FORMAT),
            format!("payload format indicator is {v:?}; EMVCo requires \"01\""),
        )),
        None => {}
    }
    if let Some(v) = p.value(1)
        && v != "11"
        && v != "12"
    {
        out.push(finding(
            "point_of_initiation",
            top(Tag::POINT_OF_INITIATION),
            format!(
                "point of initiation is {v:?}; EMVCo allows \"11\" (static) or \"12\" (dynamic)"
            ),
        ));
    }
    if !p.fields().iter().any(|f| (2..=51).contains(&f.tag.id())) {
        out.push(finding(
            "merchant_account_missing",
            None,
            "no merchant account information: EMVCo requires at least one of ids 02 to 51",
        ));
    }
    for (tag, what) in [
        (Tag::MCC, "merchant category code"),
        (Tag::CURRENCY, "transaction currency"),
        (Tag::COUNTRY, "country code"),
        (Tag::MERCHANT_NAME, "merchant name"),
        (Tag::MERCHANT_CITY, "merchant city"),
    ] {
        if p.field(tag.id()).is_none() {
            out.push(finding(
                "mandatory_field_missing",
                top(tag),
                format!("{what} (tag {tag}) is mandatory in EMVCo MPM"),
            ));
        }
    }
}

/// Category code, currency, amount, and the tip or fee indicator.
fn check_amount_fields(p: &Payload, out: &mut Vec<Finding>) {
    if let Some(v) = p.value(52)
        && (v.len() != 4 || !is_digits(v))
    {
        out.push(finding(
            "mcc_malformed",
            top(Tag::MCC),
            format!("merchant category code {v:?} is not four digits"),
        ));
    }
    let currency = p.value(53).and_then(|v| {
        if v.len() != 3 || !is_digits(v) {
            out.push(finding(
                "currency_not_numeric",
                top(Tag::CURRENCY),
                format!("transaction currency {v:?} is not a three-digit ISO 4217 numeric code"),
            ));
            None
        } else {
            let c = Currency::from_numeric_str(v);
            if c.is_none() {
                out.push(finding(
                    "currency_unknown",
                    top(Tag::CURRENCY),
                    format!(
                        "transaction currency {v} is not an ISO 4217 numeric code qrgate knows"
                    ),
                ));
            }
            c
        }
    });
    if let Some(v) = p.value(54) {
        if !is_emv_amount(v) {
            out.push(finding(
                "amount_malformed",
                top(Tag::AMOUNT),
                format!("transaction amount {v:?} must be digits with an optional '.', at most 13 characters"),
            ));
        } else if let (Some(c), Some((_, frac))) = (currency, v.split_once('.'))
            && frac.len() > usize::from(c.exponent())
        {
            out.push(finding(
                "amount_decimals",
                top(Tag::AMOUNT),
                format!(
                    "transaction amount {v} has more decimals than {c} allows ({})",
                    c.exponent()
                ),
            ));
        }
    }
    if let Some(v) = p.value(55) {
        match v {
            "01" | "02" | "03" => {}
            _ => out.push(finding(
                "tip_indicator",
                top(Tag::TIP_INDICATOR),
                format!("tip or convenience indicator {v:?} is not 01, 02 or 03"),
            )),
        }
        if v == "02" && p.field(56).is_none() {
            out.push(finding(
                "fee_fixed_missing",
                top(Tag::FEE_FIXED),
                "indicator 02 requires the fixed fee in tag 56",
            ));
        }
        if v == "03" && p.field(57).is_none() {
            out.push(finding(
                "fee_percent_missing",
                top(Tag::FEE_PERCENT),
                "indicator 03 requires the fee percentage in tag 57",
            ));
        }
    }
}

/// Country, and the lengths of the name, city and postal code.
fn check_place(p: &Payload, out: &mut Vec<Finding>) {
    if let Some(v) = p.value(58)
        && (v.len() != 2 || !v.bytes().all(|b| b.is_ascii_uppercase()))
    {
        out.push(finding(
            "country_malformed",
            top(Tag::COUNTRY),
            format!("country code {v:?} is not two upper-case letters (ISO 3166-1 alpha 2)"),
        ));
    }
    for (tag, max, code) in [
        (59_u8, 25, "merchant_name_too_long"),
        (60, 15, "merchant_city_too_long"),
        (61, 10, "postal_code_too_long"),
    ] {
        if let Some(v) = p.value(tag) {
            let n = v.chars().count();
            if n > max {
                out.push(finding(
                    code,
                    Some(format!("{tag:02}")),
                    format!("tag {tag:02} is {n} characters; EMVCo allows {max}"),
                ));
            }
        }
    }
}

/// One top-level field that holds sub-fields: templates need their GUID,
/// the language template its two entries, and no sub-field appears twice.
fn check_template(f: &Field, out: &mut Vec<Finding>) {
    if (f.tag.is_merchant_account_template() || f.tag.is_unreserved_template())
        && f.subfield(0).is_none()
    {
        out.push(finding(
            "template_guid_missing",
            Some(f.tag.to_string()),
            format!(
                "template {} has no globally unique identifier in sub-field 00",
                f.tag
            ),
        ));
    }
    if f.tag == Tag::ADDITIONAL_DATA {
        check_additional_data(f, out);
    }
    if f.tag == Tag::LANGUAGE {
        for (sub, what) in [
            (0, "language preference"),
            (1, "merchant name in the alternate language"),
        ] {
            if f.subfield(sub).is_none() {
                out.push(finding(
                    "language_template_incomplete",
                    Some(format!("64.{sub:02}")),
                    format!("{what} (64.{sub:02}) is mandatory in the language template"),
                ));
            }
        }
    }
    if let Some(subs) = &f.subfields {
        for (i, s) in subs.iter().enumerate() {
            if subs[..i].iter().any(|o| o.tag == s.tag) {
                out.push(finding(
                    "duplicate_subfield",
                    Some(format!("{}.{}", f.tag, s.tag)),
                    format!("sub-field {} appears twice in template {}", s.tag, f.tag),
                ));
            }
        }
    }
}

fn check_additional_data(f: &Field, out: &mut Vec<Finding>) {
    for s in f.subfields.iter().flatten() {
        // 01–09 are EMV-defined strings of at most 25 characters.
        if (1..=9).contains(&s.tag.id()) && s.value.chars().count() > 25 {
            out.push(finding(
                "additional_data_too_long",
                Some(format!("62.{}", s.tag)),
                format!(
                    "additional data 62.{} is {} characters; EMVCo allows 25",
                    s.tag,
                    s.value.chars().count()
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_format() {
        for ok in ["1", "12.30", "0.5", "1234567890.12", "98."] {
            assert!(is_emv_amount(ok), "{ok}");
        }
        for bad in [
            "",
            ".5",
            "1,00",
            "-1",
            "1e3",
            "12345678901.23",
            "1.2.3",
            " 1",
        ] {
            assert!(!is_emv_amount(bad), "{bad}");
        }
    }
}
