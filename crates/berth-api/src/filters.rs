//! docker's `filters` query parameter: a JSON map from a filter name to values.
//!
//! Clients send two shapes: `{"label":{"a=b":true}}` (current) and
//! `{"label":["a=b"]}` (API < 1.22, still sent by some tools). Both parse;
//! serialisation writes the current shape.

use std::collections::{BTreeMap, BTreeSet};

use berth_errdefs::{ErrorKind, HasKind};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    map: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("invalid filters {input:?}: {reason}; expected JSON like {{\"label\":{{\"key=value\":true}}}}")]
    Malformed { input: String, reason: String },
    #[error("invalid filter '{name}'")]
    UnknownFilter { name: String },
    #[error("invalid filter '{name}={value}': {reason}")]
    BadValue {
        name: String,
        value: String,
        reason: String,
    },
}

impl HasKind for FilterError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Bounds the parsed size: a filter list is a handful of short strings.
const MAX_FILTERS_LEN: usize = 64 * 1024;

impl Filters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the query value; empty means no filters.
    pub fn parse(input: &str) -> Result<Self, FilterError> {
        let malformed = |reason: String| FilterError::Malformed {
            input: input.chars().take(200).collect(),
            reason,
        };
        if input.trim().is_empty() {
            return Ok(Self::default());
        }
        if input.len() > MAX_FILTERS_LEN {
            return Err(malformed(format!("longer than {MAX_FILTERS_LEN} bytes")));
        }
        let value: serde_json::Value =
            serde_json::from_str(input).map_err(|e| malformed(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| malformed("not a JSON object".into()))?;
        let mut map = BTreeMap::new();
        for (name, values) in object {
            let set: BTreeSet<String> = match values {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool() != Some(false))
                    .map(|(k, _)| k.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| malformed(format!("value of {name:?} is not a string")))
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(malformed(format!(
                        "values of {name:?} must be an object or an array"
                    )))
                }
            };
            map.insert(name.clone(), set);
        }
        Ok(Filters { map })
    }

    /// Adds one `name=value` filter (for clients building a query).
    pub fn add(&mut self, name: &str, value: &str) {
        self.map
            .entry(name.to_string())
            .or_default()
            .insert(value.to_string());
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The values given for `name` (none when absent).
    pub fn get(&self, name: &str) -> impl Iterator<Item = &str> {
        self.map.get(name).into_iter().flatten().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Whether every `key` filter (`label`, `label!`...: `k` or `k=v`)
    /// matches `labels`: docker ANDs label filters (a container listed by
    /// `label=a --filter label=b` carries both), unlike the other keys,
    /// whose values are alternatives. True when there is none.
    pub fn labels_match<'a, I>(&self, key: &str, labels: impl Fn() -> I) -> bool
    where
        I: Iterator<Item = (&'a str, &'a str)>,
    {
        self.get(key).all(|f| label_matches(f, labels()))
    }

    /// The label test of docker's prunes: every `label` filter holds, and
    /// unless every `label!` filter holds too (a `label!` list names the
    /// labels that together keep something).
    pub fn prune_labels_match<'a, I>(&self, labels: impl Fn() -> I) -> bool
    where
        I: Iterator<Item = (&'a str, &'a str)>,
    {
        self.labels_match("label", &labels)
            && !(self.contains("label!") && self.labels_match("label!", &labels))
    }

    /// Refuses filter names outside `allowed`, as docker does.
    pub fn validate(&self, allowed: &[&str]) -> Result<(), FilterError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(name) => Err(FilterError::UnknownFilter { name: name.clone() }),
            None => Ok(()),
        }
    }

    /// A boolean filter (`dangling=true`): `None` when absent, an error when
    /// it holds anything but one of docker's boolean spellings.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, FilterError> {
        let mut result = None;
        for value in self.get(name) {
            let b = match value {
                "1" | "true" | "True" | "TRUE" => true,
                "0" | "false" | "False" | "FALSE" => false,
                _ => {
                    return Err(FilterError::BadValue {
                        name: name.to_string(),
                        value: value.to_string(),
                        reason: "expected true or false".into(),
                    })
                }
            };
            result = Some(result.unwrap_or(false) || b);
        }
        Ok(result)
    }

    /// The current wire shape: `{"name":{"value":true}}`.
    pub fn to_json(&self) -> String {
        let object: serde_json::Map<String, serde_json::Value> = self
            .map
            .iter()
            .map(|(k, vs)| {
                let inner = vs
                    .iter()
                    .map(|v| (v.clone(), serde_json::Value::Bool(true)))
                    .collect();
                (k.clone(), serde_json::Value::Object(inner))
            })
            .collect();
        serde_json::Value::Object(object).to_string()
    }
}

/// Whether a `label` filter (`key` or `key=value`) matches a label map.
fn label_matches<'a>(filter: &str, mut labels: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    match filter.split_once('=') {
        Some((key, value)) => labels.any(|(k, v)| k == key && v == value),
        None => labels.any(|(k, _)| k == filter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters_must_all_hold() {
        let labels = [("app", "web"), ("tier", "front")];
        let f = Filters::parse(r#"{"label":["app=web","tier"]}"#).unwrap();
        assert!(f.labels_match("label", || labels.iter().copied()));
        let f = Filters::parse(r#"{"label":{"app=web":true,"tier=back":true}}"#).unwrap();
        assert!(!f.labels_match("label", || labels.iter().copied()));
        assert!(Filters::new().labels_match("label", || labels.iter().copied()));
    }

    #[test]
    fn prunes_keep_what_carries_every_negated_label() {
        let labels = [("app", "web"), ("tier", "front")];
        let pairs = || labels.iter().copied();
        let f = |json: &str| Filters::parse(json).unwrap();
        assert!(f("{}").prune_labels_match(pairs));
        assert!(!f(r#"{"label!":["app"]}"#).prune_labels_match(pairs));
        assert!(!f(r#"{"label!":["app","tier=front"]}"#).prune_labels_match(pairs));
        assert!(f(r#"{"label!":["app","keep"]}"#).prune_labels_match(pairs));
        assert!(!f(r#"{"label":["keep"]}"#).prune_labels_match(pairs));
    }

    #[test]
    fn parses_both_shapes() {
        let new = Filters::parse(r#"{"label":{"a=b":true},"dangling":{"true":true}}"#).unwrap();
        let old = Filters::parse(r#"{"label":["a=b"],"dangling":["true"]}"#).unwrap();
        assert_eq!(new, old);
        assert_eq!(new.get("label").collect::<Vec<_>>(), ["a=b"]);
        assert_eq!(new.bool("dangling").unwrap(), Some(true));
        assert_eq!(new.bool("absent").unwrap(), None);
        assert_eq!(Filters::parse(&new.to_json()).unwrap(), new);
        assert!(Filters::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_input() {
        assert!(Filters::parse("{").is_err());
        assert!(Filters::parse("[1]").is_err());
        assert!(Filters::parse(r#"{"label":3}"#).is_err());
        assert!(Filters::parse(r#"{"label":[3]}"#).is_err());
        let f = Filters::parse(r#"{"bogus":["x"]}"#).unwrap();
        let err = f.validate(&["label"]).unwrap_err();
        assert_eq!(err.to_string(), "invalid filter 'bogus'");
        let f = Filters::parse(r#"{"dangling":["maybe"]}"#).unwrap();
        assert!(f.bool("dangling").is_err());
        assert!(Filters::parse(&"x".repeat(MAX_FILTERS_LEN + 1)).is_err());
    }

    #[test]
    fn labels_match_key_or_pair() {
        let labels = [("a", "b"), ("c", "")];
        assert!(label_matches("a", labels.iter().copied()));
        assert!(label_matches("a=b", labels.iter().copied()));
        assert!(!label_matches("a=c", labels.iter().copied()));
        assert!(label_matches("c=", labels.iter().copied()));
        assert!(!label_matches("d", labels.iter().copied()));
    }
}
