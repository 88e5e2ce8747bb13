//! The `filters` query parameter: `{"key":{"value":true}}` (or the older `{"key":["value"]}`),
//! checked against the keys an endpoint accepts.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Filters> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(Filters::default());
        };
        let v: Value = serde_json::from_str(raw)
            .map_err(|e| Error::InvalidArgument(format!("invalid filters {raw:?}: {e}")))?;
        let obj = v.as_object().ok_or_else(|| {
            Error::InvalidArgument(format!("invalid filters {raw:?}: not an object"))
        })?;
        let mut out = BTreeMap::new();
        for (key, values) in obj {
            if !allowed.contains(&key.as_str()) {
                return Err(Error::InvalidArgument(format!("invalid filter '{key}'")));
            }
            let list: Vec<String> = match values {
                Value::Object(m) => m.keys().cloned().collect(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                _ => return Err(Error::InvalidArgument(format!("invalid filter '{key}'"))),
            };
            out.insert(key.clone(), list);
        }
        Ok(Filters(out))
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Whether one of `key`'s values passes `test` (none given: everything does): a key's
    /// values are alternatives, as moby's filters match them.
    pub fn any_of(&self, key: &str, test: impl Fn(&str) -> bool) -> bool {
        let values = self.get(key);
        values.is_empty() || values.iter().any(|v| test(v))
    }

    /// The single boolean of a key like `dangling`.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            [] => Ok(None),
            [v] if v == "true" || v == "1" => Ok(Some(true)),
            [v] if v == "false" || v == "0" => Ok(Some(false)),
            other => Err(Error::InvalidArgument(format!(
                "invalid filter '{key}={}'",
                other.join(",")
            ))),
        }
    }

    /// `label=key` or `label=key=value` against a label map; and for prunes `label!=...`
    /// (key `label!`), which spares what matches every one given, as moby's prune does.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        let matches = |want: &String| match want.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(want),
        };
        let excluded = self.get("label!");
        self.get("label").iter().all(matches)
            && (excluded.is_empty() || !excluded.iter().all(matches))
    }
}

/// Go's path.Match: `*` and `?` do not cross '/', `[...]` classes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|i| *i == 0 || n[i - 1] != '/')
                .any(|i| go(&p[1..], &n[i..])),
            Some('?') => n.first().is_some_and(|c| *c != '/') && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return false;
                };
                let class = &p[1..end];
                let (negate, class) = match class.first() {
                    Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let Some(c) = n.first() else { return false };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_and_unknown_keys() {
        let f = Filters::parse(
            Some(r#"{"dangling":{"true":true},"label":["a=b"]}"#),
            &["dangling", "label"],
        )
        .expect("parse");
        assert_eq!(f.bool("dangling").expect("bool"), Some(true));
        assert_eq!(f.get("label"), ["a=b"]);
        let err =
            Filters::parse(Some(r#"{"bogus":{"x":true}}"#), &["dangling"]).expect_err("unknown");
        assert!(err.to_string().contains("bogus"));
        assert!(Filters::parse(Some("{not json"), &[]).is_err());
    }

    #[test]
    fn labels_and_excluded_labels() {
        let labels: BTreeMap<String, String> = [
            ("keep".to_string(), "yes".to_string()),
            ("team".to_string(), "a".to_string()),
        ]
        .into();
        let f = |raw: &str| Filters::parse(Some(raw), &["label", "label!"]).expect("parse");
        assert!(f(r#"{"label":{"team=a":true}}"#).labels_match(&labels));
        assert!(!f(r#"{"label":{"team=b":true}}"#).labels_match(&labels));
        assert!(!f(r#"{"label!":{"keep":true}}"#).labels_match(&labels));
        assert!(!f(r#"{"label!":{"keep=yes":true}}"#).labels_match(&labels));
        assert!(f(r#"{"label!":{"keep=no":true}}"#).labels_match(&labels));
        // Spared only by matching every label! given.
        assert!(f(r#"{"label!":{"keep":true,"other":true}}"#).labels_match(&labels));
        assert!(!f(r#"{"label":{"team":true},"label!":{"keep":true}}"#).labels_match(&labels));
        assert!(f(r#"{"label!":{"gone":true}}"#).labels_match(&BTreeMap::new()));
    }

    #[test]
    fn globs_like_go() {
        assert!(glob_match("busy*", "busybox"));
        assert!(!glob_match("busy*", "busybox/x"));
        assert!(glob_match("*/app", "user/app"));
        assert!(glob_match("b?sybox:[l]atest", "busybox:latest"));
        assert!(!glob_match("alpine", "busybox"));
    }
}
