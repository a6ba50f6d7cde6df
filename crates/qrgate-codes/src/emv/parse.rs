//! EMV MPM payload parsing: TLV fields with two-digit ids and two-digit
//! lengths counted in characters, templates split into sub-fields, and the
//! CRC in tag 63 checked over the UTF-8 bytes of everything before its value.

use std::fmt;

use serde::Serialize;

use super::crc::crc16_ccitt_false;

/// A two-digit data object id, "00" to "99".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(u8);

impl Tag {
    pub const PAYLOAD_FORMAT: Tag = Tag(0);
    pub const POINT_OF_INITIATION: Tag = Tag(1);
    pub const MCC: Tag = Tag(52);
    pub const CURRENCY: Tag = Tag(53);
    pub const AMOUNT: Tag = Tag(54);
    pub const TIP_INDICATOR: Tag = Tag(55);
    pub const FEE_FIXED: Tag = Tag(56);
    pub const FEE_PERCENT: Tag = Tag(57);
    pub const COUNTRY: Tag = Tag(58);
    pub const MERCHANT_NAME: Tag = Tag(59);
    pub const MERCHANT_CITY: Tag = Tag(60);
    pub const POSTAL_CODE: Tag = Tag(61);
    pub const ADDITIONAL_DATA: Tag = Tag(62);
    pub const CRC: Tag = Tag(63);
    pub const LANGUAGE: Tag = Tag(64);

    /// `None` above 99.
    pub const fn new(id: u8) -> Option<Tag> {
        if id <= 99 { Some(Tag(id)) } else { None }
    }

    pub const fn id(self) -> u8 {
        self.0
    }

    /// Merchant account information templates, 26 to 51.
    pub const fn is_merchant_account_template(self) -> bool {
        self.0 >= 26 && self.0 <= 51
    }

    /// Unreserved templates, 80 to 99.
    pub const fn is_unreserved_template(self) -> bool {
        self.0 >= 80
    }

    /// Top-level ids whose value is itself a list of sub-fields.
    pub const fn is_template(self) -> bool {
        self.is_merchant_account_template()
            || self.is_unreserved_template()
            || self.0 == 62
            || self.0 == 64
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

impl Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One data object of a payload, in the order it appeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub tag: Tag,
    /// The value exactly as it appeared (for templates: the raw sub-field text).
    pub value: String,
    /// Character offset of the field's id within the whole payload.
    pub offset: usize,
    /// Sub-fields, for templates (26–51, 62, 64, 80–99).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subfields: Option<Vec<Field>>,
}

impl Field {
    pub fn subfield(&self, tag: u8) -> Option<&Field> {
        self.subfields.as_ref()?.iter().find(|f| f.tag.id() == tag)
    }

    pub fn subfield_value(&self, tag: u8) -> Option<&str> {
        self.subfield(tag).map(|f| f.value.as_str())
    }

    /// Characters this field occupies in the payload (id, length, value).
    pub fn encoded_len(&self) -> usize {
        4 + self.value.chars().count()
    }
}

/// A parsed payload whose structure and CRC are valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payload {
    raw: String,
    fields: Vec<Field>,
    crc: u16,
}

impl Payload {
    /// Top-level fields in the order given, including 00 first and 63 last.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn field(&self, tag: u8) -> Option<&Field> {
        self.fields.iter().find(|f| f.tag.id() == tag)
    }

    pub fn value(&self, tag: u8) -> Option<&str> {
        self.field(tag).map(|f| f.value.as_str())
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn crc(&self) -> u16 {
        self.crc
    }

    /// Length in characters, the unit of EMV's 512 limit.
    pub fn char_len(&self) -> usize {
        self.raw.chars().count()
    }
}

/// What is wrong with a payload; always names the tag (when there is one)
/// and the character offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at character offset {offset}{}", tag.as_ref().map(|t| format!(" (tag {t})")).unwrap_or_default())]
pub struct EmvError {
    pub kind: EmvErrorKind,
    /// "26" for a top-level field, "26.01" for a sub-field.
    pub tag: Option<String>,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmvErrorKind {
    #[error("payload is empty")]
    Empty,
    #[error("field header cut short: {remaining} characters left where an id and length need 4")]
    TruncatedHeader { remaining: usize },
    #[error("id {found:?} is not two digits")]
    NonDigitId { found: String },
    #[error("length {found:?} is not two digits")]
    NonDigitLength { found: String },
    #[error("length 00: a present field must have a value")]
    ZeroLength,
    #[error("length {declared} overruns the payload: only {available} characters remain")]
    LengthOverrun { declared: usize, available: usize },
    #[error("tag appears twice (first at offset {first_offset})")]
    DuplicateTag { first_offset: usize },
    #[error("payload format indicator (tag 00) must be the first field")]
    FormatIndicatorNotFirst,
    #[error("CRC (tag 63) is missing")]
    CrcMissing,
    #[error("CRC (tag 63) must be the last field")]
    CrcNotLast,
    #[error("CRC (tag 63) must be 4 characters, found {found}")]
    CrcLength { found: usize },
    #[error("CRC (tag 63) {found:?} is not four hex digits")]
    CrcNotHex { found: String },
    #[error("CRC mismatch: payload says {found}, computed {computed:04X}")]
    CrcMismatch { found: String, computed: u16 },
}

impl EmvErrorKind {
    /// Stable snake_case code for APIs and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            EmvErrorKind::Empty => "emv_empty",
            EmvErrorKind::TruncatedHeader { .. } => "emv_truncated_header",
            EmvErrorKind::NonDigitId { .. } => "emv_non_digit_id",
            EmvErrorKind::NonDigitLength { .. } => "emv_non_digit_length",
            EmvErrorKind::ZeroLength => "emv_zero_length",
            EmvErrorKind::LengthOverrun { .. } => "emv_length_overrun",
            EmvErrorKind::DuplicateTag { .. } => "emv_duplicate_tag",
            EmvErrorKind::FormatIndicatorNotFirst => "emv_format_indicator_not_first",
            EmvErrorKind::CrcMissing => "emv_crc_missing",
            EmvErrorKind::CrcNotLast => "emv_crc_not_last",
            EmvErrorKind::CrcLength { .. } => "emv_crc_length",
            EmvErrorKind::CrcNotHex { .. } => "emv_crc_not_hex",
            EmvErrorKind::CrcMismatch { .. } => "emv_crc_mismatch",
        }
    }
}

fn err(kind: EmvErrorKind, tag: Option<String>, offset: usize) -> EmvError {
    EmvError { kind, tag, offset }
}

/// Split `chars` into TLV fields. `base` is the offset of `chars[0]` in the
/// payload, `parent` the enclosing template's tag for error messages.
fn split_fields(chars: &[char], base: usize, parent: Option<Tag>) -> Result<Vec<Field>, EmvError> {
    let name = |id: &str| match parent {
        Some(p) => format!("{p}.{id}"),
        None => id.to_owned(),
    };
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < chars.len() {
        let remaining = chars.len() - pos;
        if remaining < 4 {
            return Err(err(
                EmvErrorKind::TruncatedHeader { remaining },
                parent.map(|p| p.to_string()),
                base + pos,
            ));
        }
        let id_str: String = chars[pos..pos + 2].iter().collect();
        let Some(id) = two_digits(&chars[pos..pos + 2]) else {
            return Err(err(
                EmvErrorKind::NonDigitId { found: id_str },
                parent.map(|p| p.to_string()),
                base + pos,
            ));
        };
        let len_chars = &chars[pos + 2..pos + 4];
        let Some(len) = two_digits(len_chars) else {
            return Err(err(
                EmvErrorKind::NonDigitLength {
                    found: len_chars.iter().collect(),
                },
                Some(name(&id_str)),
                base + pos + 2,
            ));
        };
        let len = usize::from(len);
        if len == 0 {
            return Err(err(
                EmvErrorKind::ZeroLength,
                Some(name(&id_str)),
                base + pos + 2,
            ));
        }
        let available = remaining - 4;
        if len > available {
            return Err(err(
                EmvErrorKind::LengthOverrun {
                    declared: len,
                    available,
                },
                Some(name(&id_str)),
                base + pos + 2,
            ));
        }
        fields.push(Field {
            tag: Tag(id),
            value: chars[pos + 4..pos + 4 + len].iter().collect(),
            offset: base + pos,
            subfields: None,
        });
        pos += 4 + len;
    }
    Ok(fields)
}

fn two_digits(c: &[char]) -> Option<u8> {
    match c {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some((*a as u8 - b'0') * 10 + (*b as u8 - b'0'))
        }
        _ => None,
    }
}

/// Parse an EMV merchant-presented payload.
///
/// Rejected, each with the tag and character offset: a field header cut
/// short, a non-digit id or length, a zero length, a length that overruns
/// the payload (or its template), a duplicate top-level tag, tag 00 missing
/// or not first, the CRC missing, not last, not 4 hex digits, or wrong.
/// Departures from the EMVCo profile are not errors here; see
/// [`super::profile::check_emvco`].
pub fn parse(payload: &str) -> Result<Payload, EmvError> {
    if payload.is_empty() {
        return Err(err(EmvErrorKind::Empty, None, 0));
    }
    let chars: Vec<char> = payload.chars().collect();
    let mut fields = split_fields(&chars, 0, None)?;

    if fields.first().map(|f| f.tag) != Some(Tag::PAYLOAD_FORMAT) {
        let at = fields.iter().find(|f| f.tag == Tag::PAYLOAD_FORMAT);
        return Err(err(
            EmvErrorKind::FormatIndicatorNotFirst,
            Some("00".into()),
            at.map_or(0, |f| f.offset),
        ));
    }
    for (i, f) in fields.iter().enumerate() {
        if let Some(first) = fields[..i].iter().find(|g| g.tag == f.tag) {
            return Err(err(
                EmvErrorKind::DuplicateTag {
                    first_offset: first.offset,
                },
                Some(f.tag.to_string()),
                f.offset,
            ));
        }
    }
    let Some(crc_index) = fields.iter().position(|f| f.tag == Tag::CRC) else {
        return Err(err(
            EmvErrorKind::CrcMissing,
            Some("63".into()),
            chars.len(),
        ));
    };
    let crc_field = &fields[crc_index];
    if crc_index + 1 != fields.len() {
        return Err(err(
            EmvErrorKind::CrcNotLast,
            Some("63".into()),
            crc_field.offset,
        ));
    }
    let crc_len = crc_field.value.chars().count();
    if crc_len != 4 {
        return Err(err(
            EmvErrorKind::CrcLength { found: crc_len },
            Some("63".into()),
            crc_field.offset + 2,
        ));
    }
    let found = crc_field.value.clone();
    let Some(declared) = parse_hex16(&found) else {
        return Err(err(
            EmvErrorKind::CrcNotHex { found },
            Some("63".into()),
            crc_field.offset + 4,
        ));
    };
    // Everything before the CRC value: up to and including "6304".
    let value_start_char = crc_field.offset + 4;
    let value_start_byte: usize = chars[..value_start_char].iter().map(|c| c.len_utf8()).sum();
    let computed = crc16_ccitt_false(&payload.as_bytes()[..value_start_byte]);
    if computed != declared {
        return Err(err(
            EmvErrorKind::CrcMismatch { found, computed },
            Some("63".into()),
            crc_field.offset + 4,
        ));
    }

    for f in &mut fields {
        if f.tag.is_template() {
            let sub: Vec<char> = f.value.chars().collect();
            f.subfields = Some(split_fields(&sub, f.offset + 4, Some(f.tag))?);
        }
    }
    Ok(Payload {
        raw: payload.to_owned(),
        fields,
        crc: computed,
    })
}

fn parse_hex16(s: &str) -> Option<u16> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emv::crc::crc_hex;

    /// Append "6304" and the right CRC.
    fn seal(body: &str) -> String {
        let s = format!("{body}6304");
        let crc = crc_hex(s.as_bytes());
        format!("{s}{crc}")
    }

    fn kind(p: &str) -> EmvErrorKind {
        parse(p).unwrap_err().kind
    }

    #[test]
    fn minimal_payload() {
        let p = parse(&seal("000201")).unwrap();
        assert_eq!(p.fields().len(), 2);
        assert_eq!(p.value(0), Some("01"));
    }

    #[test]
    fn lowercase_crc_accepted() {
        let good = seal("000201");
        let lower = good.to_lowercase();
        assert!(parse(&lower).is_ok());
    }

    #[test]
    fn structural_errors_name_tag_and_offset() {
        let e = parse(&seal("0002015A0212")).unwrap_err();
        assert_eq!(e.kind.code(), "emv_non_digit_id");
        assert_eq!(e.offset, 6);
        let e = parse(&seal("00020152x1ab")).unwrap_err();
        assert_eq!(e.kind.code(), "emv_non_digit_length");
        assert_eq!(e.tag.as_deref(), Some("52"));
        let e = parse("0002015299ab6304FFFF").unwrap_err();
        assert_eq!(e.kind.code(), "emv_length_overrun");
        assert_eq!((e.tag.as_deref(), e.offset), (Some("52"), 8));
        assert_eq!(kind(&seal("0002015200")), EmvErrorKind::ZeroLength);
        assert!(matches!(
            kind(&seal("000201010211010212")),
            EmvErrorKind::DuplicateTag { first_offset: 6 }
        ));
        assert_eq!(
            kind(&seal("010211000201")),
            EmvErrorKind::FormatIndicatorNotFirst
        );
        assert_eq!(kind("000201"), EmvErrorKind::CrcMissing);
        assert_eq!(kind("00020163041D3C010212"), EmvErrorKind::CrcNotLast);
        assert!(matches!(
            kind("0002016303ABC"),
            EmvErrorKind::CrcLength { found: 3 }
        ));
        assert!(matches!(
            kind("0002016304ZZZZ"),
            EmvErrorKind::CrcNotHex { .. }
        ));
        assert!(matches!(
            kind("0002016304FFFF"),
            EmvErrorKind::CrcMismatch { .. }
        ));
        assert_eq!(kind(""), EmvErrorKind::Empty);
        assert!(matches!(
            kind("0002010"),
            EmvErrorKind::TruncatedHeader { remaining: 1 }
        ));
    }

    #[test]
    fn template_errors_name_the_subfield() {
        // Template 26 whose sub-field 01 declares 9 characters but has 3.
        let e = parse(&seal("00020126070109abc")).unwrap_err();
        assert_eq!(e.kind.code(), "emv_length_overrun");
        assert_eq!(e.tag.as_deref(), Some("26.01"));
        assert_eq!(e.offset, 12);
    }

    #[test]
    fn lengths_count_characters_and_crc_counts_bytes() {
        let p = parse("0002015906北京烧鸭店").unwrap_err();
        // 6 declared, 5 present: overrun measured in characters.
        assert_eq!(p.kind.code(), "emv_length_overrun");
        let ok = parse(&seal("0002015905北京烧鸭店")).unwrap();
        assert_eq!(ok.value(59), Some("北京烧鸭店"));
        // A CRC computed over characters (UTF-16 code units) instead of bytes is rejected.
        let body = "0002015905北京烧鸭店6304";
        let wrong: Vec<u8> = body.chars().map(|c| c as u32 as u8).collect();
        let bad = format!("{body}{}", crc_hex(&wrong));
        assert!(matches!(kind(&bad), EmvErrorKind::CrcMismatch { .. }));
    }
}
