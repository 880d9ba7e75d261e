//! Sigma values: wildcards and escapes, and the value modifiers that turn one written
//! value into the tests an event's field is put to.
//!
//! The grammar follows the Sigma specification (and pySigma, its reference): `*` is any
//! run of characters, `?` one character, and `\` escapes `*`, `?` and `\` but is an
//! ordinary character before anything else (so `C:\Windows` needs no doubling).

use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use regex::Regex;

/// Why a value cannot be compiled; the rule reader adds the file and line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatternError {
    /// A modifier the specification does not define.
    #[error("unknown modifier '{0}'")]
    UnknownModifier(String),
    /// Modifiers that cannot be combined.
    #[error("modifiers do not combine: {0}")]
    Combination(String),
    /// A value the modifier cannot take.
    #[error("{modifier} cannot take the value {value:?}: {why}")]
    BadValue {
        /// The modifier.
        modifier: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// An `expand` placeholder the mapping gives no values for.
    #[error("placeholder %{0}% has no values in the mapping")]
    Placeholder(String),
}

/// One piece of a Sigma string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Characters matched as written (case aside).
    Lit(String),
    /// `*`: any run of characters, the empty one included.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Splits a Sigma string into literal runs and wildcards.
pub fn parse_wildcards(s: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    lit.push(n);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                out.push(if c == '*' { Piece::Star } else { Piece::One });
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    out
}

/// The comparison of a `gt`/`gte`/`lt`/`lte` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// `gt`
    Gt,
    /// `gte`
    Gte,
    /// `lt`
    Lt,
    /// `lte`
    Lte,
}

impl Compare {
    /// Whether `a` stands in this relation to `b`.
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Compare::Gt => a > b,
            Compare::Gte => a >= b,
            Compare::Lt => a < b,
            Compare::Lte => a <= b,
        }
    }
}

/// Where a literal must sit in a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Anchor {
    /// The whole value.
    Exact,
    /// Anywhere.
    Contains,
    /// At the start.
    StartsWith,
    /// At the end.
    EndsWith,
}

/// One test of one value of a field.
#[derive(Debug, Clone)]
pub enum Test {
    /// A literal at an anchor; `needle` is lowercased unless `cased`.
    Literal {
        /// The characters sought.
        needle: String,
        /// Where they must sit.
        anchor: Anchor,
        /// Whether case matters (`cased`).
        cased: bool,
    },
    /// Wildcards inside the value: compiled to an anchored regular expression.
    Glob(Regex),
    /// `re`.
    Regex(Regex),
    /// `cidr`.
    Cidr(IpNet),
    /// `gt`, `gte`, `lt`, `lte`.
    Compare(Compare, f64),
    /// `null`: the field is absent or null.
    Null,
    /// `exists`: the field is present (or, with `false`, absent).
    Exists(bool),
    /// `fieldref`: the value equals (or contains, starts or ends with) another field's.
    FieldRef {
        /// The other field.
        field: String,
        /// How the two compare.
        anchor: Anchor,
        /// Whether case matters.
        cased: bool,
    },
}

impl Test {
    /// Whether one value passes (tests on presence are decided by the caller).
    pub fn matches_value(&self, v: &crate::event::Value) -> bool {
        match self {
            Test::Literal {
                needle,
                anchor,
                cased,
            } => {
                let hay = if *cased { &v.text } else { &v.lower };
                anchored(hay, needle, *anchor)
            }
            Test::Glob(re) | Test::Regex(re) => re.is_match(&v.text),
            Test::Cidr(net) => v
                .text
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| net.contains(&ip)),
            Test::Compare(cmp, n) => v.number.is_some_and(|x| cmp.holds(x, *n)),
            Test::Null => v.null,
            Test::Exists(_) | Test::FieldRef { .. } => false,
        }
    }
}

/// Whether `needle` sits in `hay` at `anchor`.
pub fn anchored(hay: &str, needle: &str, anchor: Anchor) -> bool {
    match anchor {
        Anchor::Exact => hay == needle,
        Anchor::Contains => memchr::memmem::find(hay.as_bytes(), needle.as_bytes()).is_some(),
        Anchor::StartsWith => hay.starts_with(needle),
        Anchor::EndsWith => hay.ends_with(needle),
    }
}

/// The modifiers written after a field name, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Modifiers {
    /// `contains`, `startswith`, `endswith`: wildcards added around the value.
    pub anchor: Option<Anchor>,
    /// `all`: every value must match, not any one.
    pub all: bool,
    /// `cased`.
    pub cased: bool,
    /// Value transformations in the order written.
    pub transforms: Vec<Transform>,
    /// The match type, when it is not a string match.
    pub kind: Kind,
}

/// A value transformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// `base64`
    Base64,
    /// `base64offset`
    Base64Offset,
    /// `utf16le` / `wide`
    Utf16Le,
    /// `utf16be`
    Utf16Be,
    /// `utf16` (with a byte-order mark)
    Utf16,
    /// `windash`
    Windash,
    /// `expand`
    Expand,
}

/// How a value is matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    /// Sigma strings with wildcards.
    #[default]
    String,
    /// `re`, with its flags.
    Regex {
        /// `i`
        insensitive: bool,
        /// `m`
        multiline: bool,
        /// `s`
        dotall: bool,
    },
    /// `cidr`
    Cidr,
    /// `gt` and friends.
    Compare(Compare),
    /// `exists`
    Exists,
    /// `fieldref`
    FieldRef,
}

impl Modifiers {
    /// Parses `contains|all|windash` (the part after the field name).
    pub fn parse(list: &[&str]) -> Result<Modifiers, PatternError> {
        let mut m = Modifiers::default();
        let mut regex_flags = (false, false, false);
        let mut saw_re = false;
        for &name in list {
            let set_kind = |m: &mut Modifiers, k: Kind| {
                if m.kind != Kind::String {
                    return Err(PatternError::Combination(list.join("|")));
                }
                m.kind = k;
                Ok(())
            };
            match name {
                "contains" | "startswith" | "endswith" => {
                    if m.anchor.is_some() {
                        return Err(PatternError::Combination(list.join("|")));
                    }
                    m.anchor = Some(match name {
                        "contains" => Anchor::Contains,
                        "startswith" => Anchor::StartsWith,
                        _ => Anchor::EndsWith,
                    });
                }
                "all" => m.all = true,
                "cased" => m.cased = true,
                "base64" => m.transforms.push(Transform::Base64),
                "base64offset" => m.transforms.push(Transform::Base64Offset),
                "utf16le" | "wide" => m.transforms.push(Transform::Utf16Le),
                "utf16be" => m.transforms.push(Transform::Utf16Be),
                "utf16" => m.transforms.push(Transform::Utf16),
                "windash" => m.transforms.push(Transform::Windash),
                "expand" => m.transforms.push(Transform::Expand),
                "re" => {
                    saw_re = true;
                    set_kind(
                        &mut m,
                        Kind::Regex {
                            insensitive: false,
                            multiline: false,
                            dotall: false,
                        },
                    )?;
                }
                "i" | "m" | "s" if saw_re => match name {
                    "i" => regex_flags.0 = true,
                    "m" => regex_flags.1 = true,
                    _ => regex_flags.2 = true,
                },
                "cidr" => set_kind(&mut m, Kind::Cidr)?,
                "gt" => set_kind(&mut m, Kind::Compare(Compare::Gt))?,
                "gte" => set_kind(&mut m, Kind::Compare(Compare::Gte))?,
                "lt" => set_kind(&mut m, Kind::Compare(Compare::Lt))?,
                "lte" => set_kind(&mut m, Kind::Compare(Compare::Lte))?,
                "exists" => set_kind(&mut m, Kind::Exists)?,
                "fieldref" => set_kind(&mut m, Kind::FieldRef)?,
                other => return Err(PatternError::UnknownModifier(other.to_owned())),
            }
        }
        if saw_re {
            m.kind = Kind::Regex {
                insensitive: regex_flags.0,
                multiline: regex_flags.1,
                dotall: regex_flags.2,
            };
        }
        let string_only = m.anchor.is_some() || !m.transforms.is_empty() || m.cased;
        if string_only && !matches!(m.kind, Kind::String | Kind::FieldRef) {
            return Err(PatternError::Combination(list.join("|")));
        }
        Ok(m)
    }
}

/// What a value's placeholders (`%name%`, with `expand`) stand for.
pub trait Placeholders {
    /// The values of one placeholder, or `None` when the mapping has none.
    fn values(&self, name: &str) -> Option<Vec<String>>;
}

impl Placeholders for std::collections::BTreeMap<String, Vec<String>> {
    fn values(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).cloned()
    }
}

/// Compiles one written value under its modifiers to the tests any one of which (or,
/// with `all` across values, each of which) must pass. A value can become several
/// tests: `windash` and `base64offset` write it several ways.
pub fn compile_value(
    value: &ScalarValue,
    m: &Modifiers,
    placeholders: &dyn Placeholders,
) -> Result<Vec<Test>, PatternError> {
    let text = match value {
        ScalarValue::Null => {
            return match m.kind {
                Kind::String if m.transforms.is_empty() && m.anchor.is_none() => {
                    Ok(vec![Test::Null])
                }
                _ => Err(bad(m, "null", "null only compares as a whole value")),
            };
        }
        ScalarValue::Text(t) => t.clone(),
    };
    match m.kind {
        Kind::Regex {
            insensitive,
            multiline,
            dotall,
        } => {
            let re = regex::RegexBuilder::new(&text)
                .case_insensitive(insensitive)
                .multi_line(multiline)
                .dot_matches_new_line(dotall)
                .size_limit(1 << 22)
                .build()
                .map_err(|e| bad(m, &text, &e.to_string()))?;
            return Ok(vec![Test::Regex(re)]);
        }
        Kind::Cidr => {
            let net: IpNet = text
                .trim()
                .parse()
                .map_err(|e: ipnet::AddrParseError| bad(m, &text, &e.to_string()))?;
            return Ok(vec![Test::Cidr(net)]);
        }
        Kind::Compare(c) => {
            let n: f64 = text
                .trim()
                .parse()
                .map_err(|_| bad(m, &text, "not a number"))?;
            return Ok(vec![Test::Compare(c, n)]);
        }
        Kind::Exists => {
            return match text.as_str() {
                "true" => Ok(vec![Test::Exists(true)]),
                "false" => Ok(vec![Test::Exists(false)]),
                _ => Err(bad(m, &text, "exists takes true or false")),
            };
        }
        Kind::FieldRef => {
            return Ok(vec![Test::FieldRef {
                field: text,
                anchor: m.anchor.unwrap_or(Anchor::Exact),
                cased: m.cased,
            }]);
        }
        Kind::String => {}
    }
    // Strings: expand placeholders, then apply the transformations in order.
    let mut values: Vec<Vec<Piece>> = vec![parse_wildcards(&text)];
    for t in &m.transforms {
        values = match t {
            Transform::Expand => expand(values, placeholders)?,
            Transform::Windash => values.into_iter().flat_map(|v| windash(&v)).collect(),
            Transform::Base64 | Transform::Base64Offset => {
                let mut out = Vec::new();
                for v in values {
                    let bytes = plain_bytes(&v, m, &text)?;
                    if *t == Transform::Base64 {
                        out.push(vec![Piece::Lit(b64(&bytes))]);
                    } else {
                        for s in base64_offsets(&bytes) {
                            out.push(vec![Piece::Lit(s)]);
                        }
                    }
                }
                out
            }
            Transform::Utf16Le | Transform::Utf16Be | Transform::Utf16 => {
                // The UTF-16 forms only make sense under a following base64: the bytes
                // are carried as Latin-1 characters until base64 encodes them.
                let mut out = Vec::new();
                for v in values {
                    let s = plain_text(&v, m, &text)?;
                    let mut bytes = Vec::new();
                    if *t == Transform::Utf16 {
                        bytes.extend_from_slice(&[0xFF, 0xFE]);
                    }
                    for u in s.encode_utf16() {
                        let pair = if *t == Transform::Utf16Be {
                            u.to_be_bytes()
                        } else {
                            u.to_le_bytes()
                        };
                        bytes.extend_from_slice(&pair);
                    }
                    out.push(vec![Piece::Lit(bytes.iter().map(|&b| b as char).collect())]);
                }
                out
            }
        };
    }
    let mut tests = Vec::with_capacity(values.len());
    for pieces in values {
        tests.push(string_test(pieces, m.anchor, m.cased)?);
    }
    Ok(tests)
}

/// A value under its modifiers, the way the rule wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalarValue {
    /// Text (numbers and booleans as written).
    Text(String),
    /// `null` (or `~`).
    Null,
}

fn bad(m: &Modifiers, value: &str, why: &str) -> PatternError {
    PatternError::BadValue {
        modifier: format!("{:?}", m.kind).to_lowercase(),
        value: value.to_owned(),
        why: why.to_owned(),
    }
}

fn plain_text(v: &[Piece], m: &Modifiers, text: &str) -> Result<String, PatternError> {
    let mut s = String::new();
    for p in v {
        match p {
            Piece::Lit(l) => s.push_str(l),
            _ => return Err(bad(m, text, "wildcards cannot be encoded")),
        }
    }
    Ok(s)
}

/// The bytes a value stands for: UTF-16 output is carried as Latin-1 characters (one per
/// byte); anything else is UTF-8.
fn plain_bytes(v: &[Piece], m: &Modifiers, text: &str) -> Result<Vec<u8>, PatternError> {
    let s = plain_text(v, m, text)?;
    let utf16 = m.transforms.iter().any(|t| {
        matches!(
            t,
            Transform::Utf16 | Transform::Utf16Le | Transform::Utf16Be
        )
    });
    if utf16 && s.chars().all(|c| (c as u32) < 256) {
        Ok(s.chars().map(|c| c as u8).collect())
    } else {
        Ok(s.into_bytes())
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The three ways a value reads inside base64 text, by its offset modulo three, with
/// the characters that depend on its neighbours cut off (as pySigma computes them).
pub fn base64_offsets(value: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    let mut out = Vec::with_capacity(3);
    for i in 0..3 {
        let mut padded = vec![b' '; i];
        padded.extend_from_slice(value);
        let enc = b64(&padded);
        let cut_end = END[(value.len() + i) % 3];
        let end = enc.len().saturating_sub(cut_end);
        if START[i] < end {
            out.push(enc[START[i]..end].to_owned());
        }
    }
    out
}

/// `windash`: every `-` or `/` at the start of a word is also tried as each of the
/// other characters Windows programs accept as an option prefix.
fn windash(v: &[Piece]) -> Vec<Vec<Piece>> {
    const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
    // Positions of option dashes across the literal pieces.
    let mut outs: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut prev_space = true;
    for p in v {
        match p {
            Piece::Lit(l) => {
                let mut variants: Vec<String> = vec![String::new()];
                for c in l.chars() {
                    if prev_space && (c == '-' || c == '/') && variants.len() <= 64 {
                        variants = variants
                            .iter()
                            .flat_map(|s| {
                                DASHES.iter().map(move |d| {
                                    let mut t = s.clone();
                                    t.push(*d);
                                    t
                                })
                            })
                            .collect();
                    } else {
                        for s in &mut variants {
                            s.push(c);
                        }
                    }
                    prev_space = c.is_whitespace();
                }
                outs = outs
                    .iter()
                    .flat_map(|o| {
                        variants.iter().map(move |s| {
                            let mut n = o.clone();
                            n.push(Piece::Lit(s.clone()));
                            n
                        })
                    })
                    .collect();
            }
            other => {
                prev_space = false;
                for o in &mut outs {
                    o.push(other.clone());
                }
            }
        }
    }
    outs
}

fn expand(
    values: Vec<Vec<Piece>>,
    placeholders: &dyn Placeholders,
) -> Result<Vec<Vec<Piece>>, PatternError> {
    let mut out = Vec::new();
    for v in values {
        let mut partial: Vec<Vec<Piece>> = vec![Vec::new()];
        for p in v {
            let Piece::Lit(l) = &p else {
                for o in &mut partial {
                    o.push(p.clone());
                }
                continue;
            };
            let mut rest = l.as_str();
            let mut segments: Vec<Vec<String>> = Vec::new();
            while let Some(start) = rest.find('%') {
                let Some(len) = rest[start + 1..].find('%') else {
                    break;
                };
                let name = &rest[start + 1..start + 1 + len];
                segments.push(vec![rest[..start].to_owned()]);
                let vals = placeholders
                    .values(name)
                    .ok_or_else(|| PatternError::Placeholder(name.to_owned()))?;
                segments.push(vals);
                rest = &rest[start + len + 2..];
            }
            segments.push(vec![rest.to_owned()]);
            for seg in segments {
                partial = partial
                    .iter()
                    .flat_map(|o| {
                        seg.iter().map(move |s| {
                            let mut n = o.clone();
                            n.extend(parse_wildcards(s));
                            n
                        })
                    })
                    .collect();
            }
        }
        out.extend(partial);
    }
    Ok(out)
}

/// Turns pieces plus the anchor modifier into the cheapest test: a literal at an anchor
/// where the wildcards sit only at the ends, a regular expression otherwise.
fn string_test(
    mut pieces: Vec<Piece>,
    anchor: Option<Anchor>,
    cased: bool,
) -> Result<Test, PatternError> {
    match anchor {
        Some(Anchor::Contains) => {
            pieces.insert(0, Piece::Star);
            pieces.push(Piece::Star);
        }
        Some(Anchor::StartsWith) => pieces.push(Piece::Star),
        Some(Anchor::EndsWith) => pieces.insert(0, Piece::Star),
        _ => {}
    }
    // Collapse runs of stars.
    pieces.dedup_by(|a, b| *a == Piece::Star && *b == Piece::Star);
    let lead = pieces.first() == Some(&Piece::Star);
    let trail = pieces.len() > 1 && pieces.last() == Some(&Piece::Star);
    let inner: &[Piece] = {
        let s = usize::from(lead);
        let e = pieces.len() - usize::from(trail);
        if s <= e { &pieces[s..e] } else { &[] }
    };
    let fold = |s: &str| {
        if cased {
            s.to_owned()
        } else {
            s.to_lowercase()
        }
    };
    match inner {
        [] if lead || trail => Ok(Test::Literal {
            needle: String::new(),
            anchor: Anchor::Contains,
            cased,
        }),
        [] => Ok(Test::Literal {
            needle: String::new(),
            anchor: Anchor::Exact,
            cased,
        }),
        [Piece::Lit(l)] => Ok(Test::Literal {
            needle: fold(l),
            anchor: match (lead, trail) {
                (true, true) => Anchor::Contains,
                (true, false) => Anchor::EndsWith,
                (false, true) => Anchor::StartsWith,
                (false, false) => Anchor::Exact,
            },
            cased,
        }),
        _ => {
            let mut re = String::from(if cased { "(?s)^" } else { "(?si)^" });
            for p in &pieces {
                match p {
                    Piece::Lit(l) => re.push_str(&regex::escape(l)),
                    Piece::Star => re.push_str(".*"),
                    Piece::One => re.push('.'),
                }
            }
            re.push('$');
            let re = Regex::new(&re).map_err(|e| PatternError::BadValue {
                modifier: "wildcard".into(),
                value: re.clone(),
                why: e.to_string(),
            })?;
            Ok(Test::Glob(re))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn tests_for(value: &str, mods: &[&str]) -> Vec<Test> {
        let m = Modifiers::parse(mods).expect("modifiers");
        compile_value(
            &ScalarValue::Text(value.into()),
            &m,
            &BTreeMap::<String, Vec<String>>::new(),
        )
        .expect("compiles")
    }

    fn any_matches(tests: &[Test], hay: &str) -> bool {
        let v = crate::event::Value::text(hay);
        tests.iter().any(|t| t.matches_value(&v))
    }

    #[test]
    fn wildcards_and_escapes_follow_the_spec() {
        assert_eq!(
            parse_wildcards(r"C:\Windows\a*.exe"),
            vec![
                Piece::Lit(r"C:\Windows\a".into()),
                Piece::Star,
                Piece::Lit(".exe".into())
            ]
        );
        assert_eq!(parse_wildcards(r"a\*b"), vec![Piece::Lit("a*b".into())]);
        assert_eq!(parse_wildcards(r"a\\"), vec![Piece::Lit(r"a\".into())]);
        assert_eq!(parse_wildcards(r"a\?"), vec![Piece::Lit("a?".into())]);
        assert!(any_matches(&tests_for("a?c", &[]), "abc"));
        assert!(!any_matches(&tests_for("a?c", &[]), "abbc"));
        assert!(any_matches(&tests_for(r"a\*c", &[]), "a*c"));
        assert!(!any_matches(&tests_for(r"a\*c", &[]), "abc"));
    }

    #[test]
    fn plain_values_are_whole_and_ignore_case() {
        let t = tests_for("Whoami.EXE", &[]);
        assert!(any_matches(&t, "whoami.exe"));
        assert!(!any_matches(&t, "x whoami.exe"));
        let t = tests_for("Whoami.EXE", &["cased"]);
        assert!(!any_matches(&t, "whoami.exe"));
        assert!(any_matches(&t, "Whoami.EXE"));
    }

    #[test]
    fn anchors() {
        assert!(any_matches(&tests_for("mimi", &["contains"]), "x MIMIkatz"));
        assert!(any_matches(&tests_for("mimi", &["startswith"]), "mimikatz"));
        assert!(!any_matches(
            &tests_for("mimi", &["startswith"]),
            "xmimikatz"
        ));
        assert!(any_matches(&tests_for(".exe", &["endswith"]), "a.EXE"));
        assert!(!any_matches(&tests_for(".exe", &["endswith"]), "a.exe "));
        // A wildcard inside a contains value.
        assert!(any_matches(
            &tests_for("net*user", &["contains"]),
            "c net1 user x"
        ));
    }

    #[test]
    fn base64_as_the_spec_writes_it() {
        // The specification's example: "Sigma" is U2lnbWE=.
        let t = tests_for("Sigma", &["base64"]);
        assert!(any_matches(&t, "U2lnbWE="));
        // base64offset: the three offsets of "/bin/bash" (pySigma's own test).
        let got = base64_offsets(b"/bin/bash");
        assert_eq!(got, vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]);
        // A value inside base64 text is found at each offset.
        for pad in ["", "a", "ab"] {
            let enc = b64(format!("{pad}/bin/bash -c").as_bytes());
            let t = tests_for("/bin/bash", &["base64offset", "contains"]);
            assert!(any_matches(&t, &enc), "{pad:?} {enc}");
        }
    }

    #[test]
    fn utf16_under_base64_matches_powershell_encoded_commands() {
        // PowerShell's -EncodedCommand is base64 of UTF-16LE.
        let cmd = "Invoke-WebRequest http://x";
        let utf16: Vec<u8> = cmd.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let enc = b64(&utf16);
        let t = tests_for(
            "Invoke-WebRequest",
            &["utf16le", "base64offset", "contains"],
        );
        assert!(any_matches(&t, &format!("powershell -enc {enc}")));
        let t = tests_for("Invoke-WebRequest", &["wide", "base64offset", "contains"]);
        assert!(any_matches(&t, &enc));
        let t = tests_for(
            "Invoke-WebRequest",
            &["utf16be", "base64offset", "contains"],
        );
        assert!(!any_matches(&t, &enc));
        let be: Vec<u8> = cmd.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert!(any_matches(&t, &b64(&be)));
    }

    #[test]
    fn windash_tries_every_option_prefix() {
        let t = tests_for(" -enc ", &["contains", "windash"]);
        for dash in ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"] {
            assert!(
                any_matches(&t, &format!("powershell {dash}enc x")),
                "{dash}"
            );
        }
        // A dash inside a word is not an option prefix.
        let t = tests_for("a-b", &["windash"]);
        assert!(!any_matches(&t, "a/b"));
    }

    #[test]
    fn regex_flags() {
        let t = tests_for("^abc", &["re"]);
        assert!(any_matches(&t, "abcd"));
        assert!(!any_matches(&t, "ABCd"));
        assert!(any_matches(&tests_for("^abc", &["re", "i"]), "ABCd"));
        assert!(any_matches(&tests_for("^b", &["re", "m"]), "a\nb"));
        assert!(!any_matches(&tests_for("^b", &["re"]), "a\nb"));
        assert!(any_matches(&tests_for("a.b", &["re", "s"]), "a\nb"));
        assert!(!any_matches(&tests_for("a.b", &["re"]), "a\nb"));
    }

    #[test]
    fn cidr_and_comparisons() {
        let t = tests_for("10.0.0.0/8", &["cidr"]);
        assert!(any_matches(&t, "10.1.2.3"));
        assert!(!any_matches(&t, "11.1.2.3"));
        assert!(any_matches(&tests_for("fe80::/10", &["cidr"]), "fe80::1"));
        assert!(any_matches(&tests_for("5", &["gt"]), "6"));
        assert!(!any_matches(&tests_for("5", &["gt"]), "5"));
        assert!(any_matches(&tests_for("5", &["gte"]), "5"));
        assert!(any_matches(&tests_for("5", &["lt"]), "4"));
        assert!(any_matches(&tests_for("5", &["lte"]), "0x5"));
        assert!(!any_matches(&tests_for("5", &["lt"]), "abc"));
    }

    #[test]
    fn expand_takes_placeholders_from_the_mapping() {
        let mut p = BTreeMap::new();
        p.insert(
            "Admins".to_owned(),
            vec!["alice".to_owned(), "bob".to_owned()],
        );
        let m = Modifiers::parse(&["expand"]).expect("mods");
        let t = compile_value(&ScalarValue::Text("%Admins%".into()), &m, &p).expect("ok");
        assert!(any_matches(&t, "bob"));
        assert!(!any_matches(&t, "eve"));
        let missing = compile_value(&ScalarValue::Text("%Nobody%".into()), &m, &p);
        assert_eq!(
            missing.err(),
            Some(PatternError::Placeholder("Nobody".into()))
        );
    }

    #[test]
    fn bad_modifiers_are_named() {
        assert_eq!(
            Modifiers::parse(&["contians"]),
            Err(PatternError::UnknownModifier("contians".into()))
        );
        assert!(Modifiers::parse(&["contains", "endswith"]).is_err());
        assert!(Modifiers::parse(&["re", "cidr"]).is_err());
        assert!(Modifiers::parse(&["contains", "cidr"]).is_err());
        let m = Modifiers::parse(&["re"]).expect("re");
        assert!(compile_value(&ScalarValue::Text("(".into()), &m, &BTreeMap::new()).is_err());
    }
}
