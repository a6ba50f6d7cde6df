//! A check of JSON from outside that the parser does not make: a key given
//! twice in one object. `serde_json` keeps the last value of a repeated key
//! (and a struct target refuses only its own fields), so `{"amount":"1.00",
//! "amount":"100.00"}` would be read one way here and possibly another way
//! by a proxy, a log reader or a signature check in front of the gateway.
//! The API refuses such a body instead of guessing.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// What is wrong with a JSON text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonProblem {
    #[error("{0}")]
    Invalid(String),
    /// The first key found twice in one object (objects are walked in
    /// document order).
    #[error("the key {0:?} appears twice in one object")]
    DuplicateKey(String),
}

/// `Ok` when `text` is one JSON value in which no object repeats a key
/// (keys are compared after unescaping, so `"a"` and `"\u0061"` are one
/// key). Nesting is bounded by the parser's recursion limit.
pub fn check_unique_keys(text: &[u8]) -> Result<(), JsonProblem> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let found = Walk
        .deserialize(&mut de)
        .and_then(|found| de.end().map(|()| found))
        .map_err(|e| JsonProblem::Invalid(e.to_string()))?;
    match found {
        Some(key) => Err(JsonProblem::DuplicateKey(key)),
        None => Ok(()),
    }
}

/// Walks one value; yields the first repeated key found in it.
#[derive(Clone, Copy)]
struct Walk;

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

// Scalars are skipped, never read as money: the float visitor only names
// the type the parser hands a fraction in.
#[allow(clippy::disallowed_types)]
impl<'de> Visitor<'de> for Walk {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut first = None;
        while let Some(found) = seq.next_element_seed(self)? {
            first = first.or(found);
        }
        Ok(first)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        let mut first = None;
        while let Some(key) = map.next_key::<String>()? {
            let repeated = !seen.insert(key.clone());
            let inner = map.next_value_seed(self)?;
            if repeated {
                first = first.or(Some(key));
            }
            first = first.or(inner);
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_repeated_key_is_named_wherever_it_is() {
        for (text, key) in [
            (r#"{"amount":"1.00","amount":"100.00"}"#, "amount"),
            (r#"{"a":{"b":1,"b":2}}"#, "b"),
            (r#"[{"x":1},{"y":[{"z":0,"z":0}]}]"#, "z"),
            (r#"{"a":1,"\u0061":2}"#, "a"),
        ] {
            assert_eq!(
                check_unique_keys(text.as_bytes()),
                Err(JsonProblem::DuplicateKey(key.into())),
                "{text}"
            );
        }
    }

    #[test]
    fn json_without_repeats_passes_and_broken_json_is_invalid() {
        for text in [
            r#"{"amount":"1.00","a":{"amount":"2.00"}}"#,
            r#"[1,2.5,-3,true,null,"s",{}]"#,
            "{}",
            "0",
        ] {
            assert_eq!(check_unique_keys(text.as_bytes()), Ok(()), "{text}");
        }
        for text in ["{", r#"{"a":1}{"#, "", r#"{"a" 1}"#, "[1,]"] {
            assert!(
                matches!(
                    check_unique_keys(text.as_bytes()),
                    Err(JsonProblem::Invalid(_))
                ),
                "{text}"
            );
        }
    }

    proptest! {
        /// Any object serde_json can print has unique keys; printing one
        /// of its keys a second time is always caught.
        #[test]
        fn printed_objects_pass_and_a_repeat_is_caught(
            map in proptest::collection::btree_map("[a-z\\\\\"\u{e9}]{1,6}", any::<i64>(), 1..8),
        ) {
            let text = serde_json::to_string(&map).unwrap();
            prop_assert_eq!(check_unique_keys(text.as_bytes()), Ok(()));
            let (k, v) = map.iter().next().unwrap();
            let repeated = format!(
                "{},{}:{}}}",
                text.trim_end_matches('}'),
                serde_json::to_string(k).unwrap(),
                v
            );
            prop_assert_eq!(
                check_unique_keys(repeated.as_bytes()),
                Err(JsonProblem::DuplicateKey(k.clone()))
            );
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn any_bytes_get_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = check_unique_keys(&bytes);
        }
    }
}
