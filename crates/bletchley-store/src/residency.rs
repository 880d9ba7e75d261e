//! Jurisdictions and the residency policy (rule 3).

use std::fmt;

use crate::error::{Error, Result};

/// A place where bytes may rest: an ISO 3166-1 alpha-2 country and an
/// optional region, written `GB/london`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Jurisdiction {
    /// Upper-case alpha-2 country code.
    pub country: String,
    /// Lower-case region, if any.
    pub region: Option<String>,
}

impl Jurisdiction {
    /// Parses `CC` or `CC/region`.
    pub fn parse(s: &str) -> Result<Jurisdiction> {
        let (c, r) = match s.split_once('/') {
            Some((c, r)) => (c, Some(r)),
            None => (s, None),
        };
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Error::Invalid(format!(
                "jurisdiction {s:?}: expected an ISO 3166-1 alpha-2 country in capitals, optionally /region (e.g. GB/london)"
            )));
        }
        if let Some(r) = r
            && (r.is_empty()
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(Error::Invalid(format!(
                "jurisdiction {s:?}: the region must be lower-case letters, digits or '-'"
            )));
        }
        Ok(Jurisdiction {
            country: c.to_owned(),
            region: r.map(str::to_owned),
        })
    }

    /// Whether a location in `self` satisfies an allow-list entry `rule`
    /// (`GB` allows any GB region; `GB/london` only London).
    pub fn within(&self, rule: &Jurisdiction) -> bool {
        self.country == rule.country && (rule.region.is_none() || rule.region == self.region)
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.region {
            Some(r) => write!(f, "{}/{}", self.country, r),
            None => f.write_str(&self.country),
        }
    }
}

/// Parses a comma-separated allow list such as `GB,US/virginia`.
pub fn parse_allow(s: &str) -> Result<Vec<Jurisdiction>> {
    let v: Result<Vec<_>> = s
        .split(',')
        .map(|p| Jurisdiction::parse(p.trim()))
        .collect();
    let v = v?;
    if v.is_empty() {
        return Err(Error::Invalid(
            "an empty allow list would forbid every write".into(),
        ));
    }
    Ok(v)
}

/// What a residency rule applies to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    /// The platform's default, applied to everything.
    Default,
    /// One agency's items.
    Agency(String),
    /// One collection's items (by catalog number).
    Collection(u32),
    /// Items of one classification.
    Classification(String),
}

impl Scope {
    /// The catalog's key for this scope.
    pub fn key(&self) -> (String, String) {
        match self {
            Scope::Default => ("default".into(), String::new()),
            Scope::Agency(a) => ("agency".into(), a.clone()),
            Scope::Collection(c) => ("collection".into(), c.to_string()),
            Scope::Classification(c) => ("classification".into(), c.clone()),
        }
    }
}

/// Whether a location at `j` is allowed under every applicable rule: the rules
/// intersect, so the most restrictive wins.
pub fn allowed(j: &Jurisdiction, rules: &[&[Jurisdiction]]) -> bool {
    rules.iter().all(|allow| allow.iter().any(|r| j.within(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let l = Jurisdiction::parse("GB/london").unwrap();
        assert!(l.within(&Jurisdiction::parse("GB").unwrap()));
        assert!(!l.within(&Jurisdiction::parse("GB/cheltenham").unwrap()));
        assert!(!l.within(&Jurisdiction::parse("US").unwrap()));
        assert!(Jurisdiction::parse("gb").is_err());
        assert!(Jurisdiction::parse("GBR").is_err());
        assert!(Jurisdiction::parse("GB/").is_err());
        let gb = parse_allow("GB").unwrap();
        let gbus = parse_allow("GB,US").unwrap();
        assert!(allowed(&l, &[&gb, &gbus]));
        assert!(!allowed(
            &Jurisdiction::parse("US/virginia").unwrap(),
            &[&gb, &gbus]
        ));
    }
}
