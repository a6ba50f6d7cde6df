//! The rule catalogue (`spec/rules.toml`) as data: ids, levels, numbers.
//!
//! The gateway reads every number it enforces from here. A deployment may
//! override a number in its config: towards stricter always (when the rule
//! allows overriding at all), looser only for rules marked so or when the
//! config names the rule in `allow_loosening` (logged at start-up).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The catalogue shipped with this build.
pub const BUILTIN: &str = include_str!("../../../spec/rules.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
}

/// Which way a deployment may move a rule's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Overridable {
    /// The number is fixed.
    #[default]
    No,
    /// Only to a smaller number (a lower cap, a shorter validity).
    Stricter,
    /// Only to a larger number (keeping records longer).
    Looser,
    /// Either way (a documented choice such as the time zone).
    Any,
}

/// A number of seconds as people say it: "365 days", "2 hours", "15 s".
pub fn span(seconds: i64) -> String {
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} s"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub level: Level,
    pub statement: String,
    pub value: Option<i64>,
    pub unit: Option<String>,
    pub source: String,
    pub confidence: String,
    #[serde(default)]
    pub overridable: Overridable,
    /// Conformance cases (`qrgate-conformance list`) that check this rule.
    pub cases: Vec<String>,
    /// Why no black-box case can check it (then `cases` may be empty).
    pub untestable: Option<String>,
    /// An optional limit: no number (off) until a deployment sets one,
    /// which always counts as stricter than none.
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule catalogue is not valid: {0}")]
    Parse(String),
    #[error("rule id {0} appears twice in the catalogue")]
    Duplicate(String),
    #[error("unknown rule {0} in the configuration")]
    Unknown(String),
    #[error("rule {id} has no number to override")]
    NoValue { id: String },
    #[error("rule {id} is fixed at {value} {unit}; it cannot be overridden")]
    Fixed {
        id: String,
        value: i64,
        unit: String,
    },
    #[error(
        "rule {id} ({level:?}) would be loosened from {from} to {to} {unit}; only stricter values are allowed. \
         To do it anyway, list {id} under allow_loosening in the config (it will be logged)"
    )]
    Loosening {
        id: String,
        level: Level,
        from: i64,
        to: i64,
        unit: String,
    },
    #[error("the catalogue has no rule {0}, which this build enforces")]
    Missing(String),
    #[error("rule {id} is {value}, outside what this build can enforce: {why}")]
    OutOfRange {
        id: String,
        value: i64,
        why: &'static str,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rule: Vec<Rule>,
}

/// An override the deployment asked for and was allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub id: String,
    /// `None` when an optional limit was off.
    pub from: Option<i64>,
    pub to: i64,
    /// True when it loosens a rule through `allow_loosening`.
    pub loosened: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalogue {
    rules: Vec<Rule>,
}

impl Catalogue {
    pub fn parse(text: &str) -> Result<Catalogue, RuleError> {
        let f: File = toml::from_str(text).map_err(|e| RuleError::Parse(e.to_string()))?;
        for (i, r) in f.rule.iter().enumerate() {
            if f.rule[..i].iter().any(|o| o.id == r.id) {
                return Err(RuleError::Duplicate(r.id.clone()));
            }
        }
        Ok(Catalogue { rules: f.rule })
    }

    pub fn builtin() -> Result<Catalogue, RuleError> {
        Catalogue::parse(BUILTIN)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The number of a rule this build enforces; an error names a catalogue without it.
    pub fn value(&self, id: &str) -> Result<i64, RuleError> {
        self.get(id)
            .and_then(|r| r.value)
            .ok_or_else(|| RuleError::Missing(id.to_owned()))
    }

    /// The number of an optional limit: `None` while it is off.
    pub fn optional_value(&self, id: &str) -> Result<Option<i64>, RuleError> {
        self.get(id)
            .filter(|r| r.optional || r.value.is_some())
            .map(|r| r.value)
            .ok_or_else(|| RuleError::Missing(id.to_owned()))
    }

    /// Apply deployment overrides, refusing any that loosen a rule without
    /// being named in `allow_loosening`.
    pub fn with_overrides(
        mut self,
        overrides: &BTreeMap<String, i64>,
        allow_loosening: &[String],
    ) -> Result<(Catalogue, Vec<Applied>), RuleError> {
        let mut applied = Vec::new();
        for (id, &to) in overrides {
            let rule = self
                .rules
                .iter_mut()
                .find(|r| &r.id == id)
                .ok_or_else(|| RuleError::Unknown(id.clone()))?;
            let unit = rule.unit.clone().unwrap_or_default();
            if rule.value.is_none() && rule.optional {
                // Turning an optional limit on is always stricter than none.
                if to < 0 {
                    return Err(RuleError::Parse(format!("{id} must not be negative")));
                }
                rule.value = Some(to);
                applied.push(Applied {
                    id: id.clone(),
                    from: None,
                    to,
                    loosened: false,
                });
                continue;
            }
            let from = rule
                .value
                .ok_or_else(|| RuleError::NoValue { id: id.clone() })?;
            let stricter = to <= from;
            let allowed = match rule.overridable {
                Overridable::Any => true,
                Overridable::Stricter => stricter,
                Overridable::Looser => to >= from,
                Overridable::No => to == from,
            };
            let forced = allow_loosening.iter().any(|a| a == id);
            if !allowed && !forced {
                if rule.overridable == Overridable::No {
                    return Err(RuleError::Fixed {
                        id: id.clone(),
                        value: from,
                        unit,
                    });
                }
                return Err(RuleError::Loosening {
                    id: id.clone(),
                    level: rule.level,
                    from,
                    to,
                    unit,
                });
            }
            rule.value = Some(to);
            applied.push(Applied {
                id: id.clone(),
                from: Some(from),
                to,
                loosened: !allowed,
            });
        }
        Ok((self, applied))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses_with_unique_ids() {
        let c = Catalogue::builtin().unwrap();
        assert!(c.rules().len() >= 10);
        assert_eq!(c.value("BCP-LIMIT-C-DAILY"), Ok(100_000));
        assert_eq!(c.value("BCP-CODE-TTL"), Ok(60));
        assert!(matches!(c.value("NOPE"), Err(RuleError::Missing(_))));
    }

    #[test]
    fn overrides_may_only_tighten_unless_named() {
        let c = Catalogue::builtin().unwrap();
        let tighten = BTreeMap::from([("BCP-LIMIT-C-DAILY".to_string(), 50_000)]);
        let (c2, applied) = c.clone().with_overrides(&tighten, &[]).unwrap();
        assert_eq!(c2.value("BCP-LIMIT-C-DAILY"), Ok(50_000));
        assert!(!applied[0].loosened);
        let loosen = BTreeMap::from([("BCP-LIMIT-C-DAILY".to_string(), 200_000)]);
        let e = c.clone().with_overrides(&loosen, &[]).unwrap_err();
        assert!(e.to_string().contains("allow_loosening"), "{e}");
        let (c3, applied) = c
            .clone()
            .with_overrides(&loosen, &["BCP-LIMIT-C-DAILY".to_string()])
            .unwrap();
        assert_eq!(c3.value("BCP-LIMIT-C-DAILY"), Ok(200_000));
        assert!(applied[0].loosened);
        let unknown = BTreeMap::from([("BCP-NOPE".to_string(), 1)]);
        assert!(matches!(
            c.clone().with_overrides(&unknown, &[]),
            Err(RuleError::Unknown(_))
        ));
        let no_value = BTreeMap::from([("BCP-CODE-SINGLE-USE".to_string(), 2)]);
        assert!(matches!(
            c.with_overrides(&no_value, &[]),
            Err(RuleError::NoValue { .. })
        ));
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let text = "[[rule]]\nid='X'\nlevel='MUST'\nstatement='s'\nsource='s'\nconfidence='text'\ncases=[]\n".repeat(2);
        assert!(matches!(
            Catalogue::parse(&text),
            Err(RuleError::Duplicate(_))
        ));
    }
}
