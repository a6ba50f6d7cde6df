//! A merchant's own notes on an order, a payment or a refund: up to
//! [`MAX_KEYS`] keys of up to [`MAX_KEY_LEN`] characters (letters, digits,
//! `_`, `-`, `.`), each with a text value of up to [`MAX_VALUE_LEN`]
//! characters and no control characters. The gateway stores them and
//! gives them back (views, webhooks, the trade statement); it never acts on
//! them. A value that is not valid is refused whole, never trimmed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// At most this many keys.
pub const MAX_KEYS: usize = 20;
/// A key is 1 to this many characters.
pub const MAX_KEY_LEN: usize = 40;
/// A value is at most this many characters.
pub const MAX_VALUE_LEN: usize = 200;

/// Validated metadata, keys in order, with its canonical JSON text (kept
/// so that a row can be written from a borrow of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct Metadata {
    map: BTreeMap<String, String>,
    text: String,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            map: BTreeMap::new(),
            text: "{}".to_owned(),
        }
    }
}

/// Why metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata may have at most {MAX_KEYS} keys; it has {0}")]
    TooManyKeys(usize),
    #[error(
        "metadata key {0:?} must be 1 to {MAX_KEY_LEN} characters of letters, digits, '_', '-' or '.'"
    )]
    BadKey(String),
    #[error(
        "metadata value of {0:?} must be at most {MAX_VALUE_LEN} characters with no control characters"
    )]
    BadValue(String),
}

impl TryFrom<BTreeMap<String, String>> for Metadata {
    type Error = MetadataError;

    fn try_from(map: BTreeMap<String, String>) -> Result<Self, MetadataError> {
        if map.len() > MAX_KEYS {
            return Err(MetadataError::TooManyKeys(map.len()));
        }
        for (k, v) in &map {
            let key_ok = !k.is_empty()
                && k.chars().count() <= MAX_KEY_LEN
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !key_ok {
                return Err(MetadataError::BadKey(shorten(k)));
            }
            if v.chars().count() > MAX_VALUE_LEN || v.chars().any(char::is_control) {
                return Err(MetadataError::BadValue(shorten(k)));
            }
        }
        // A map of strings always serialises.
        let text = serde_json::to_string(&map).unwrap_or_default();
        Ok(Metadata { map, text })
    }
}

impl From<Metadata> for BTreeMap<String, String> {
    fn from(m: Metadata) -> Self {
        m.map
    }
}

/// A refused key named in an error message, cut short.
fn shorten(s: &str) -> String {
    s.chars().take(MAX_KEY_LEN + 1).collect()
}

impl Metadata {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The canonical JSON text (`{}` when empty).
    pub fn as_json(&self) -> &str {
        &self.text
    }

    /// The JSON text stored in a column: `None` when empty.
    pub fn to_column(&self) -> Option<&str> {
        (!self.is_empty()).then_some(self.text.as_str())
    }

    /// Read back a stored column (absent is empty).
    pub fn from_column(text: Option<&str>) -> Result<Metadata, serde_json::Error> {
        match text {
            None => Ok(Metadata::default()),
            Some(t) => serde_json::from_str(t),
        }
    }
}

/// The canonical JSON text (keys in order).
impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(json: &str) -> Result<Metadata, String> {
        serde_json::from_str::<Metadata>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn limits_are_enforced() {
        assert!(parse(r#"{"order":"A-1","till.no":"3"}"#).is_ok());
        assert!(parse("{}").unwrap().is_empty());
        let too_many: BTreeMap<String, String> = (0..=MAX_KEYS)
            .map(|i| (format!("k{i}"), "v".into()))
            .collect();
        assert_eq!(
            Metadata::try_from(too_many),
            Err(MetadataError::TooManyKeys(MAX_KEYS + 1))
        );
        assert!(parse(r#"{"":"x"}"#).unwrap_err().contains("metadata key"));
        assert!(
            parse(r#"{"a b":"x"}"#)
                .unwrap_err()
                .contains("metadata key")
        );
        let long_key = format!(r#"{{"{}":"x"}}"#, "k".repeat(MAX_KEY_LEN + 1));
        assert!(parse(&long_key).is_err());
        let long_value = format!(r#"{{"k":"{}"}}"#, "v".repeat(MAX_VALUE_LEN + 1));
        assert!(parse(&long_value).unwrap_err().contains("value"));
        let full_value = format!(r#"{{"k":"{}"}}"#, "值".repeat(MAX_VALUE_LEN));
        assert!(parse(&full_value).is_ok(), "characters, not bytes");
        assert!(parse(r#"{"k":"a\nb"}"#).is_err());
        assert!(parse(r#"{"k":1}"#).is_err(), "values are text");
        assert!(parse(r#"["k"]"#).is_err());
    }

    #[test]
    fn column_round_trip() {
        let m = parse(r#"{"b":"2","a":"1"}"#).unwrap();
        assert_eq!(m.to_column(), Some(r#"{"a":"1","b":"2"}"#));
        assert_eq!(Metadata::from_column(m.to_column()).unwrap(), m);
        assert_eq!(Metadata::default().to_column(), None);
        assert!(Metadata::from_column(None).unwrap().is_empty());
    }

    proptest! {
        /// Whatever JSON object arrives, what is accepted is within the
        /// limits and reads back the same from its column.
        #[test]
        fn accepted_is_within_limits(map in proptest::collection::btree_map(".{0,45}", ".{0,210}", 0..25)) {
            match Metadata::try_from(map.clone()) {
                Ok(m) => {
                    prop_assert!(m.map.len() <= MAX_KEYS);
                    for (k, v) in m.iter() {
                        prop_assert!(!k.is_empty() && k.chars().count() <= MAX_KEY_LEN);
                        prop_assert!(v.chars().count() <= MAX_VALUE_LEN);
                        prop_assert!(!v.chars().any(char::is_control));
                    }
                    prop_assert_eq!(Metadata::from_column(m.to_column()).unwrap(), m);
                }
                Err(_) => {
                    let fits = map.len() <= MAX_KEYS && map.iter().all(|(k, v)| {
                        !k.is_empty() && k.chars().count() <= MAX_KEY_LEN
                            && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                            && v.chars().count() <= MAX_VALUE_LEN && !v.chars().any(char::is_control)
                    });
                    prop_assert!(!fits, "refused metadata within the limits: {:?}", map);
                }
            }
        }
    }
}
