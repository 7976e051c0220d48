//! Label and field selectors as the API server evaluates them for `list`: comma-joined
//! requirements, all of which must hold (`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a)`).

use std::collections::BTreeMap;

/// One parsed requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in split_top_level(text)? {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(term)?);
        }
        Ok(Self(reqs))
    }

    /// True when every requirement holds for `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|req| match req {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

/// A parsed field selector over the fields the emulator knows.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Fields a pod field selector may name here.
const POD_FIELDS: [&str; 3] = ["metadata.name", "metadata.namespace", "status.phase"];

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter (`=`, `==`, `!=` only, as the API server).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                ));
            };
            let field = field.trim();
            if !POD_FIELDS.contains(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            reqs.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self(reqs))
    }

    /// True when every requirement holds; `lookup` returns a field's value.
    pub fn matches(&self, lookup: impl Fn(&str) -> String) -> bool {
        self.0
            .iter()
            .all(|(field, equal, value)| (lookup(field) == *value) == *equal)
    }
}

fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced parentheses")?,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".into());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    let bad = || format!("unable to parse requirement: `{term}`");
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    };
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        return key_ok(key)
            .then(|| Requirement::NotExists(key.to_owned()))
            .ok_or_else(bad);
    }
    for (op, neg) in [(" notin ", true), (" in ", false)] {
        if let Some((key, set)) = term.split_once(op) {
            let key = key.trim();
            let set = set.trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(bad)?;
            let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
            if !key_ok(key) {
                return Err(bad());
            }
            return Ok(if neg {
                Requirement::NotIn(key.to_owned(), values)
            } else {
                Requirement::In(key.to_owned(), values)
            });
        }
    }
    let (key, value, eq) = if let Some((k, v)) = term.split_once("!=") {
        (k, v, false)
    } else if let Some((k, v)) = term.split_once("==") {
        (k, v, true)
    } else if let Some((k, v)) = term.split_once('=') {
        (k, v, true)
    } else {
        return key_ok(term)
            .then(|| Requirement::Exists(term.to_owned()))
            .ok_or_else(bad);
    };
    let (key, value) = (key.trim(), value.trim());
    if !key_ok(key) || value.contains(['=', '!', '(', ')', ' ']) {
        return Err(bad());
    }
    Ok(if eq {
        Requirement::Equals(key.to_owned(), value.to_owned())
    } else {
        Requirement::NotEquals(key.to_owned(), value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_and_comma_joined() {
        let l = labels(&[
            ("app.kubernetes.io/part-of", "sandbox"),
            ("attachd.dev/tenant", "acme"),
        ]);
        assert!(LabelSelector::parse("app.kubernetes.io/part-of=sandbox")
            .unwrap()
            .matches(&l));
        assert!(
            LabelSelector::parse("app.kubernetes.io/part-of==sandbox,attachd.dev/tenant=acme")
                .unwrap()
                .matches(&l)
        );
        assert!(!LabelSelector::parse(
            "app.kubernetes.io/part-of=sandbox,attachd.dev/tenant=globex"
        )
        .unwrap()
        .matches(&l));
        assert!(LabelSelector::parse("").unwrap().matches(&l));
    }

    #[test]
    fn set_based_and_existence() {
        let l = labels(&[("tier", "gold")]);
        assert!(LabelSelector::parse("tier in (gold, silver)")
            .unwrap()
            .matches(&l));
        assert!(!LabelSelector::parse("tier notin (gold)")
            .unwrap()
            .matches(&l));
        assert!(LabelSelector::parse("tier,!missing").unwrap().matches(&l));
        assert!(LabelSelector::parse("tier!=bronze").unwrap().matches(&l));
        assert!(LabelSelector::parse("tier=(").is_err());
    }

    #[test]
    fn field_selector() {
        let f = FieldSelector::parse("metadata.name=p1").unwrap();
        assert!(f.matches(|k| if k == "metadata.name" {
            "p1".into()
        } else {
            String::new()
        }));
        assert!(FieldSelector::parse("spec.nodeName=x").is_err());
    }
}
