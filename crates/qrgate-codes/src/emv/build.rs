//! Building EMV MPM payloads: a low-level [`Encoder`] and a typed
//! [`MpmPayload`] that encodes, and decodes back from a parsed [`Payload`].

use serde::Serialize;

use qrgate_core::{Currency, Money};

use super::crc::crc_hex;
use super::parse::{Payload, Tag};

/// Why a payload could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("tag {tag}: value is empty; omit the field instead")]
    EmptyValue { tag: String },
    #[error("tag {tag}: value is {len} characters; a value holds at most 99")]
    ValueTooLong { tag: String, len: usize },
    #[error("tag {tag} is not allowed here: {why}")]
    TagNotAllowed { tag: String, why: &'static str },
    #[error("{field}: {why}")]
    Invalid { field: &'static str, why: String },
}

/// Appends fields in order and seals the payload with its CRC.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    out: String,
}

fn tlv(out: &mut String, tag: &str, id: u8, value: &str) -> Result<(), BuildError> {
    let len = value.chars().count();
    if len == 0 {
        return Err(BuildError::EmptyValue {
            tag: tag.to_owned(),
        });
    }
    if len > 99 {
        return Err(BuildError::ValueTooLong {
            tag: tag.to_owned(),
            len,
        });
    }
    out.push_str(&format!("{id:02}{len:02}"));
    out.push_str(value);
    Ok(())
}

/// Encode sub-fields into a template value.
pub fn encode_template(parent: u8, subs: &[(u8, String)]) -> Result<String, BuildError> {
    let mut s = String::new();
    for (id, v) in subs {
        if *id > 99 {
            return Err(BuildError::TagNotAllowed {
                tag: format!("{parent:02}.{id}"),
                why: "ids are two digits",
            });
        }
        tlv(&mut s, &format!("{parent:02}.{id:02}"), *id, v)?;
    }
    Ok(s)
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    pub fn field(&mut self, id: u8, value: &str) -> Result<&mut Self, BuildError> {
        if id > 99 || id == 63 {
            return Err(BuildError::TagNotAllowed {
                tag: id.to_string(),
                why: "the CRC (63) is added by finish(); ids are 00 to 99",
            });
        }
        tlv(&mut self.out, &format!("{id:02}"), id, value)?;
        Ok(self)
    }

    pub fn template(&mut self, id: u8, subs: &[(u8, String)]) -> Result<&mut Self, BuildError> {
        let v = encode_template(id, subs)?;
        self.field(id, &v)
    }

    /// The fields so far, without CRC.
    pub fn body(&self) -> &str {
        &self.out
    }

    /// Append `6304` and the CRC over the UTF-8 bytes up to and including it.
    pub fn finish(&self) -> String {
        let mut s = self.out.clone();
        s.push_str("6304");
        let crc = crc_hex(s.as_bytes());
        s.push_str(&crc);
        s
    }
}

/// Static (11: reusable, no amount) or dynamic (12: one transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointOfInitiation {
    Static,
    Dynamic,
}

impl PointOfInitiation {
    pub fn code(self) -> &'static str {
        match self {
            PointOfInitiation::Static => "11",
            PointOfInitiation::Dynamic => "12",
        }
    }
}

/// A template: its id and its sub-fields in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template {
    pub id: u8,
    pub subfields: Vec<(u8, String)>,
}

/// The typed content of a merchant-presented payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MpmPayload {
    pub point_of_initiation: PointOfInitiation,
    /// Templates 26–51.
    pub merchant_accounts: Vec<Template>,
    /// Four digits (ISO 18245).
    pub mcc: String,
    pub currency: Currency,
    /// Only for dynamic codes; in `currency`.
    pub amount: Option<Money>,
    /// ISO 3166-1 alpha 2.
    pub country: String,
    pub merchant_name: String,
    pub merchant_city: String,
    pub postal_code: Option<String>,
    /// Sub-fields of template 62 (05 = reference label).
    pub additional_data: Vec<(u8, String)>,
    /// Template 64: language, name, optional city in that language.
    pub language: Option<LanguageTemplate>,
    /// Templates 80–99.
    pub unreserved: Vec<Template>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanguageTemplate {
    pub language: String,
    pub name: String,
    pub city: Option<String>,
}

impl MpmPayload {
    fn validate(&self) -> Result<(), BuildError> {
        let invalid = |field, why: &str| {
            Err(BuildError::Invalid {
                field,
                why: why.to_owned(),
            })
        };
        if self.mcc.len() != 4 || !self.mcc.bytes().all(|b| b.is_ascii_digit()) {
            return invalid("mcc", "must be four digits (ISO 18245)");
        }
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return invalid(
                "country",
                "must be two upper-case letters (ISO 3166-1 alpha 2)",
            );
        }
        if self.merchant_name.chars().count() > 25 {
            return invalid("merchant_name", "at most 25 characters");
        }
        if self.merchant_city.chars().count() > 15 {
            return invalid("merchant_city", "at most 15 characters");
        }
        if self
            .postal_code
            .as_ref()
            .is_some_and(|p| p.chars().count() > 10)
        {
            return invalid("postal_code", "at most 10 characters");
        }
        if self.merchant_accounts.is_empty() {
            return invalid(
                "merchant_accounts",
                "at least one merchant account template (26-51) is required",
            );
        }
        for t in &self.merchant_accounts {
            if !(26..=51).contains(&t.id) {
                return invalid("merchant_accounts", "template ids are 26 to 51");
            }
        }
        for t in &self.unreserved {
            if !(80..=99).contains(&t.id) {
                return invalid("unreserved", "template ids are 80 to 99");
            }
        }
        for t in self.merchant_accounts.iter().chain(&self.unreserved) {
            if !t.subfields.iter().any(|(id, _)| *id == 0) {
                return invalid(
                    "template",
                    "every template needs a globally unique identifier in sub-field 00",
                );
            }
        }
        let mut ids: Vec<u8> = self
            .merchant_accounts
            .iter()
            .chain(&self.unreserved)
            .map(|t| t.id)
            .collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return invalid("template", "template ids must be unique");
        }
        for (id, v) in &self.additional_data {
            if (1..=9).contains(id) && v.chars().count() > 25 {
                return invalid(
                    "additional_data",
                    "sub-fields 01-09 hold at most 25 characters",
                );
            }
        }
        match (self.point_of_initiation, &self.amount) {
            (PointOfInitiation::Static, Some(_)) => {
                return invalid(
                    "amount",
                    "a static code carries no amount; use a dynamic code",
                );
            }
            (_, Some(m)) if m.currency() != self.currency => {
                return invalid(
                    "amount",
                    "amount currency differs from the payload currency",
                );
            }
            (_, Some(m)) if !m.is_positive() => return invalid("amount", "must be positive"),
            _ => {}
        }
        Ok(())
    }

    /// Write every field except the CRC, in EMVCo order.
    pub fn encode_fields(&self, enc: &mut Encoder) -> Result<(), BuildError> {
        self.validate()?;
        enc.field(0, "01")?;
        enc.field(1, self.point_of_initiation.code())?;
        let mut accounts = self.merchant_accounts.clone();
        accounts.sort_by_key(|t| t.id);
        for t in &accounts {
            enc.template(t.id, &t.subfields)?;
        }
        enc.field(52, &self.mcc)?;
        enc.field(53, &self.currency.numeric_str())?;
        if let Some(m) = &self.amount {
            enc.field(54, &m.to_decimal_string())?;
        }
        enc.field(58, &self.country)?;
        enc.field(59, &self.merchant_name)?;
        enc.field(60, &self.merchant_city)?;
        if let Some(p) = &self.postal_code {
            enc.field(61, p)?;
        }
        if !self.additional_data.is_empty() {
            enc.template(62, &self.additional_data)?;
        }
        if let Some(l) = &self.language {
            let mut subs = vec![(0, l.language.clone()), (1, l.name.clone())];
            if let Some(c) = &l.city {
                subs.push((2, c.clone()));
            }
            enc.template(64, &subs)?;
        }
        let mut unreserved = self.unreserved.clone();
        unreserved.sort_by_key(|t| t.id);
        for t in &unreserved {
            enc.template(t.id, &t.subfields)?;
        }
        Ok(())
    }

    /// The complete payload with CRC.
    pub fn encode(&self) -> Result<String, BuildError> {
        let mut enc = Encoder::new();
        self.encode_fields(&mut enc)?;
        Ok(enc.finish())
    }

    /// Read the typed content back from a parsed payload.
    pub fn from_payload(p: &Payload) -> Result<MpmPayload, BuildError> {
        let need = |tag: u8, field: &'static str| {
            p.value(tag).map(str::to_owned).ok_or(BuildError::Invalid {
                field,
                why: format!("tag {tag:02} is missing"),
            })
        };
        let point_of_initiation = match p.value(1) {
            Some("11") => PointOfInitiation::Static,
            Some("12") => PointOfInitiation::Dynamic,
            other => {
                return Err(BuildError::Invalid {
                    field: "point_of_initiation",
                    why: format!("{other:?} is neither 11 nor 12"),
                });
            }
        };
        let currency_str = need(53, "currency")?;
        let currency = Currency::from_numeric_str(&currency_str).ok_or(BuildError::Invalid {
            field: "currency",
            why: format!("{currency_str:?} is not a known ISO 4217 numeric code"),
        })?;
        let amount = match p.value(54) {
            Some(v) => Some(
                Money::parse_amount(v, currency).map_err(|e| BuildError::Invalid {
                    field: "amount",
                    why: e.to_string(),
                })?,
            ),
            None => None,
        };
        let template = |f: &super::parse::Field| Template {
            id: f.tag.id(),
            subfields: f
                .subfields
                .iter()
                .flatten()
                .map(|s| (s.tag.id(), s.value.clone()))
                .collect(),
        };
        let language = p.field(Tag::LANGUAGE.id()).map(|f| LanguageTemplate {
            language: f.subfield_value(0).unwrap_or_default().to_owned(),
            name: f.subfield_value(1).unwrap_or_default().to_owned(),
            city: f.subfield_value(2).map(str::to_owned),
        });
        let payload = MpmPayload {
            point_of_initiation,
            merchant_accounts: p
                .fields()
                .iter()
                .filter(|f| f.tag.is_merchant_account_template())
                .map(template)
                .collect(),
            mcc: need(52, "mcc")?,
            currency,
            amount,
            country: need(58, "country")?,
            merchant_name: need(59, "merchant_name")?,
            merchant_city: need(60, "merchant_city")?,
            postal_code: p.value(61).map(str::to_owned),
            additional_data: p
                .field(62)
                .map(|f| template(f).subfields)
                .unwrap_or_default(),
            language,
            unreserved: p
                .fields()
                .iter()
                .filter(|f| f.tag.is_unreserved_template())
                .map(template)
                .collect(),
        };
        payload.validate()?;
        Ok(payload)
    }
}
