//! OAuth scopes (RFC 6749 section 3.3): a space-delimited set of scope tokens.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// One scope token: 1–128 characters from RFC 6749's `scope-token` alphabet
/// (`%x21 / %x23-5B / %x5D-7E`: printable ASCII without space, `"` and `\`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(Arc<str>);

/// Why a scope did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a valid scope: use 1-128 printable ASCII characters without spaces, quotes or backslashes"
)]
pub struct ScopeError(pub String);

impl Scope {
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok {
            Ok(Self(Arc::from(s)))
        } else {
            Err(ScopeError(s.chars().take(64).collect()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::ids::parse_str(d, Scope::parse)
    }
}

/// A set of scopes, ordered so that its text form is stable.
///
/// A sorted, deduplicated vector rather than a `BTreeSet`: every app holds one, sets
/// have a handful of members, and a B-tree node costs ~200 bytes even for one scope
/// (with a million apps in memory, that was a fifth of the view).
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ScopeSet(Vec<Scope>);

static EMPTY: ScopeSet = ScopeSet(Vec::new());

impl ScopeSet {
    /// The empty set, borrowed for as long as needed.
    pub fn empty() -> &'static ScopeSet {
        &EMPTY
    }
    /// Parse a space-delimited scope string. Empty or all-space input is the empty set.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        s.split(' ')
            .filter(|t| !t.is_empty())
            .map(Scope::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::from_vec)
    }
    fn from_vec(mut v: Vec<Scope>) -> Self {
        v.sort();
        v.dedup();
        v.shrink_to_fit();
        ScopeSet(v)
    }
    pub fn contains(&self, s: &str) -> bool {
        self.0.iter().any(|x| x.as_str() == s)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.0.binary_search(s).is_ok())
    }
    /// The members of `self` that `other` lacks.
    pub fn missing_from<'a>(&'a self, other: &ScopeSet) -> Vec<&'a Scope> {
        self.0
            .iter()
            .filter(|s| other.0.binary_search(s).is_err())
            .collect()
    }
    /// The set without the members named in `names`.
    pub fn without(&self, names: &[&str]) -> ScopeSet {
        ScopeSet(
            self.0
                .iter()
                .filter(|s| !names.contains(&s.as_str()))
                .cloned()
                .collect(),
        )
    }
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        // Both sorted: the result is sorted too.
        ScopeSet(
            self.0
                .iter()
                .filter(|s| other.0.binary_search(s).is_ok())
                .cloned()
                .collect(),
        )
    }
    /// Replace each member by its equal in `pool` (adding it when new), so
    /// that many sets naming one scope share its text.
    pub fn interned(&mut self, pool: &mut std::collections::HashSet<Scope>) {
        for s in &mut self.0 {
            match pool.get(s) {
                Some(p) => *s = p.clone(),
                None => {
                    pool.insert(s.clone());
                }
            }
        }
    }
    /// The RFC 6749 text form: members joined by single spaces, sorted.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(s.as_str());
        }
        out
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Scope>::deserialize(d).map(Self::from_vec)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        Self::from_vec(iter.into_iter().collect())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_sorted() {
        let s = ScopeSet::parse("write  read admin").unwrap();
        assert_eq!(s.to_text(), "admin read write");
        assert_eq!(ScopeSet::parse("").unwrap().len(), 0);
    }

    #[test]
    fn refuses_bad_characters() {
        assert!(ScopeSet::parse("a\"b").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
        assert!(Scope::parse("é").is_err());
        assert!(Scope::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn subset_and_missing() {
        let app = ScopeSet::parse("read write").unwrap();
        let asked = ScopeSet::parse("read delete").unwrap();
        assert!(!asked.is_subset(&app));
        let missing: Vec<_> = asked
            .missing_from(&app)
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(missing, vec!["delete"]);
        assert_eq!(asked.intersection(&app).to_text(), "read");
    }

    #[test]
    fn duplicates_collapse_and_order_does_not_matter() {
        let a = ScopeSet::parse("write read write").unwrap();
        let b: ScopeSet = serde_json::from_str(r#"["read","write","read"]"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"["read","write"]"#);
    }
}
