//! Protective markings: the banner grammar, its parser and renderer, and the
//! high-water mark.
//!
//! Grammar (segments separated by `//`, in this order):
//!
//! ```text
//! banner        = classification [ "//" compartments ] [ "//" releasability ] *( "//" descriptor )
//! classification= "OFFICIAL" | "OFFICIAL-SENSITIVE" | "SECRET" | "TOP SECRET"
//! compartments  = codeword *( "/" codeword )          ; codeword = [A-Z][A-Z0-9-]{1,31}
//! releasability = "UK EYES ONLY" | "FVEY" | "NOT RELEASABLE" | "REL TO " token *( ", " token )
//! token         = ISO 3166-1 alpha-3 code | "FVEY"
//! descriptor    = "PERSONAL DATA" | "COMMERCIAL" | "LOCSEN" | "MEDICAL" | ...
//! ```
//!
//! The order of codewords, nations and descriptors is kept as written, so that
//! `render(parse(s)) == s` for every accepted `s`; decisions use them as sets.

use std::fmt;

use crate::nation::{FVEY, Nation, NationSet};

/// Classification levels, ordered so that `a < b` means `b` is more restrictive.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize,
)]
pub enum Classification {
    /// OFFICIAL: routine business.
    #[serde(rename = "OFFICIAL")]
    Official,
    /// SECRET: serious threat actors.
    #[serde(rename = "SECRET")]
    Secret,
    /// TOP SECRET: the most sensitive.
    #[serde(rename = "TOP SECRET")]
    TopSecret,
}

impl Classification {
    /// The banner word.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Official => "OFFICIAL",
            Classification::Secret => "SECRET",
            Classification::TopSecret => "TOP SECRET",
        }
    }

    /// Parses a clearance or classification level as written in banners.
    pub fn parse(s: &str) -> Result<Classification, MarkingError> {
        match s {
            "OFFICIAL" => Ok(Classification::Official),
            "SECRET" => Ok(Classification::Secret),
            "TOP SECRET" => Ok(Classification::TopSecret),
            _ => Err(MarkingError::new(
                0,
                format!("unknown classification {s:?}: expected OFFICIAL, SECRET or TOP SECRET"),
            )),
        }
    }

    /// All levels, lowest first.
    pub const ALL: [Classification; 3] = [
        Classification::Official,
        Classification::Secret,
        Classification::TopSecret,
    ];
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Descriptors that may follow the releasability. They restrict handling but do
/// not change who may see an item.
pub const DESCRIPTORS: [&str; 8] = [
    "PERSONAL DATA",
    "COMMERCIAL",
    "LOCSEN",
    "MEDICAL",
    "LEGAL",
    "HR",
    "INVESTIGATIONS",
    "MARKET SENSITIVE",
];

/// One entry of a `REL TO` list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RelToken {
    /// A single nation.
    Nation(Nation),
    /// The Five Eyes group.
    Fvey,
}

/// Who an item may be released to, in the form it was written.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Releasability {
    /// No releasability segment: the platform's home nation only.
    Home,
    /// `UK EYES ONLY`: GBR only.
    UkEyesOnly,
    /// `FVEY` standing alone.
    Fvey,
    /// `REL TO A, B, ...`.
    RelTo(Vec<RelToken>),
    /// `NOT RELEASABLE`: nobody. Arises from combining markings whose
    /// releasabilities share no nation; never granted.
    NotReleasable,
}

/// A protective marking. Build it with [`Marking::parse`] or
/// [`Marking::high_water_mark`]; the fields are private so the derived nation
/// set always agrees with the written form.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Marking {
    classification: Classification,
    sensitive: bool,
    compartments: Vec<Box<str>>,
    releasability: Releasability,
    descriptors: Vec<&'static str>,
    /// Expanded releasability; ignored when `releasability` is `Home`.
    nations: NationSet,
}

/// Why a banner was rejected, with the byte offset where the problem starts.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("invalid marking at byte {position}: {reason}")]
pub struct MarkingError {
    /// Byte offset into the banner.
    pub position: usize,
    /// What is wrong there.
    pub reason: String,
}

impl MarkingError {
    fn new(position: usize, reason: impl Into<String>) -> MarkingError {
        MarkingError {
            position,
            reason: reason.into(),
        }
    }
}

/// Longest banner accepted; real banners are far shorter, and a bound keeps
/// hostile input cheap.
const MAX_BANNER: usize = 1024;

fn is_codeword(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=32).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'-')
}

const RESERVED: [&str; 6] = ["OFFICIAL", "SECRET", "TOP", "FVEY", "REL", "SENSITIVE"];

impl Marking {
    /// Parses a banner string such as `SECRET//STRAP1//REL TO GBR, USA`.
    pub fn parse(banner: &str) -> Result<Marking, MarkingError> {
        if banner.len() > MAX_BANNER {
            return Err(MarkingError::new(
                MAX_BANNER,
                format!("banner longer than {MAX_BANNER} bytes"),
            ));
        }
        if banner.is_empty() {
            return Err(MarkingError::new(
                0,
                "empty banner: expected a classification such as OFFICIAL",
            ));
        }
        let mut segments = Vec::new();
        let mut start = 0;
        for (i, _) in banner.match_indices("//") {
            segments.push((start, &banner[start..i]));
            start = i + 2;
        }
        segments.push((start, &banner[start..]));

        let (pos0, first) = segments[0];
        let (classification, sensitive) = match first {
            "OFFICIAL" => (Classification::Official, false),
            "OFFICIAL-SENSITIVE" => (Classification::Official, true),
            "SECRET" => (Classification::Secret, false),
            "TOP SECRET" => (Classification::TopSecret, false),
            other => {
                let hint = if other.to_ascii_uppercase() != other {
                    " (banners are upper case)"
                } else {
                    ""
                };
                return Err(MarkingError::new(
                    pos0,
                    format!(
                        "unknown classification {other:?}: expected OFFICIAL, OFFICIAL-SENSITIVE, SECRET or TOP SECRET{hint}"
                    ),
                ));
            }
        };

        // Stage: 0 = compartments allowed, 1 = releasability allowed, 2 = descriptors only.
        let mut stage = 0;
        let mut compartments: Vec<Box<str>> = Vec::new();
        let mut releasability = Releasability::Home;
        let mut descriptors: Vec<&'static str> = Vec::new();
        for &(pos, seg) in &segments[1..] {
            if seg.is_empty() {
                return Err(MarkingError::new(
                    pos,
                    "empty segment between '//' separators",
                ));
            }
            if seg.trim() != seg {
                return Err(MarkingError::new(
                    pos,
                    format!("segment {seg:?} has surrounding spaces"),
                ));
            }
            if let Some(d) = DESCRIPTORS.iter().find(|d| **d == seg) {
                if descriptors.contains(d) {
                    return Err(MarkingError::new(pos, format!("descriptor {seg} repeated")));
                }
                descriptors.push(d);
                stage = 2;
                continue;
            }
            if let Some(r) = parse_releasability(pos, seg)? {
                if releasability != Releasability::Home {
                    return Err(MarkingError::new(
                        pos,
                        "more than one releasability segment",
                    ));
                }
                if stage > 1 {
                    return Err(MarkingError::new(
                        pos,
                        "releasability must come before descriptors",
                    ));
                }
                releasability = r;
                stage = 2;
                continue;
            }
            // Otherwise it must be the compartment segment.
            if stage > 0 {
                let what = if stage == 2 && !descriptors.is_empty() {
                    format!(
                        "unknown descriptor {seg:?}: expected one of {}",
                        DESCRIPTORS.join(", ")
                    )
                } else {
                    format!(
                        "unexpected segment {seg:?}: codewords must come right after the classification"
                    )
                };
                return Err(MarkingError::new(pos, what));
            }
            let mut off = pos;
            for word in seg.split('/') {
                if !is_codeword(word) || RESERVED.contains(&word) {
                    return Err(MarkingError::new(
                        off,
                        format!(
                            "{word:?} is neither a codeword (2-32 of A-Z, 0-9, '-', starting with a letter), a releasability nor a known descriptor"
                        ),
                    ));
                }
                if compartments.iter().any(|c| &**c == word) {
                    return Err(MarkingError::new(off, format!("codeword {word} repeated")));
                }
                compartments.push(word.into());
                off += word.len() + 1;
            }
            stage = 1;
        }
        if sensitive && classification != Classification::Official {
            return Err(MarkingError::new(0, "SENSITIVE applies to OFFICIAL only"));
        }
        let nations = expand(&releasability);
        Ok(Marking {
            classification,
            sensitive,
            compartments,
            releasability,
            descriptors,
            nations,
        })
    }

    /// Renders the banner; inverse of [`Marking::parse`].
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(48);
        s.push_str(if self.sensitive {
            "OFFICIAL-SENSITIVE"
        } else {
            self.classification.as_str()
        });
        if !self.compartments.is_empty() {
            s.push_str("//");
            for (i, c) in self.compartments.iter().enumerate() {
                if i > 0 {
                    s.push('/');
                }
                s.push_str(c);
            }
        }
        match &self.releasability {
            Releasability::Home => {}
            Releasability::UkEyesOnly => s.push_str("//UK EYES ONLY"),
            Releasability::Fvey => s.push_str("//FVEY"),
            Releasability::NotReleasable => s.push_str("//NOT RELEASABLE"),
            Releasability::RelTo(tokens) => {
                s.push_str("//REL TO ");
                for (i, t) in tokens.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    match t {
                        RelToken::Nation(n) => s.push_str(n.alpha3()),
                        RelToken::Fvey => s.push_str("FVEY"),
                    }
                }
            }
        }
        for d in &self.descriptors {
            s.push_str("//");
            s.push_str(d);
        }
        s
    }

    /// This marking with its releasability written out: one without any is
    /// for `home` only, and is rewritten to say so (`UK EYES ONLY` for GBR,
    /// `REL TO` the nation otherwise), so that it means the same on a node
    /// whose home nation is another.
    pub fn explicit(&self, home: Nation) -> Marking {
        let mut m = self.clone();
        if m.releasability == Releasability::Home {
            m.releasability = if home.alpha3() == "GBR" {
                Releasability::UkEyesOnly
            } else {
                Releasability::RelTo(vec![RelToken::Nation(home)])
            };
            m.nations = expand(&m.releasability);
        }
        m
    }

    /// The classification level.
    pub fn classification(&self) -> Classification {
        self.classification
    }

    /// Whether the OFFICIAL-SENSITIVE handling caveat applies.
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }

    /// Codewords, all of which a reader must hold.
    pub fn compartments(&self) -> impl Iterator<Item = &str> {
        self.compartments.iter().map(|c| &**c)
    }

    /// The releasability as written.
    pub fn releasability(&self) -> &Releasability {
        &self.releasability
    }

    /// Descriptors as written.
    pub fn descriptors(&self) -> &[&'static str] {
        &self.descriptors
    }

    /// The nations allowed to read, given the platform's home nation.
    pub fn releasable_to(&self, home: Nation) -> NationSet {
        match self.releasability {
            Releasability::Home => [home].into_iter().collect(),
            _ => self.nations,
        }
    }

    /// Whether `nation` may read, given the platform's home nation.
    #[inline]
    pub fn releasable(&self, nation: Nation, home: Nation) -> bool {
        match self.releasability {
            Releasability::Home => nation == home,
            _ => self.nations.contains(nation),
        }
    }

    /// Whether this marking is at least as restrictive as `other`: as high a
    /// classification, every codeword and descriptor of it, and releasable to no
    /// nation it is not. Changing `other` to this is an upgrade, which the owner
    /// may make alone; anything else is a downgrade or a widening.
    pub fn covers(&self, other: &Marking, home: Nation) -> bool {
        let mine = self.releasable_to(home);
        let theirs = other.releasable_to(home);
        self.classification >= other.classification
            // OFFICIAL-SENSITIVE is below SECRET: the flag counts within OFFICIAL only.
            && (self.classification > other.classification || self.sensitive || !other.sensitive)
            && other
                .compartments
                .iter()
                .all(|c| self.compartments.contains(c))
            && other
                .descriptors
                .iter()
                .all(|d| self.descriptors.contains(d))
            && mine.iter().all(|n| theirs.contains(n))
    }

    /// The least marking that is at least as restrictive as every input: the
    /// marking a derived item or aggregate must carry (rule 4). `None` for no
    /// inputs.
    pub fn high_water_mark<'a, I>(markings: I, home: Nation) -> Option<Marking>
    where
        I: IntoIterator<Item = &'a Marking>,
    {
        let mut it = markings.into_iter();
        let first = it.next()?;
        let mut classification = first.classification;
        let mut any_sensitive = first.sensitive;
        let mut compartments = first.compartments.clone();
        let mut descriptors = first.descriptors.clone();
        let mut all_home = first.releasability == Releasability::Home;
        let mut any_uk_eyes = first.releasability == Releasability::UkEyesOnly;
        let mut nations = first.releasable_to(home);
        for m in it {
            classification = classification.max(m.classification);
            any_sensitive |= m.sensitive;
            for c in &m.compartments {
                if !compartments.contains(c) {
                    compartments.push(c.clone());
                }
            }
            for d in &m.descriptors {
                if !descriptors.contains(d) {
                    descriptors.push(d);
                }
            }
            all_home &= m.releasability == Releasability::Home;
            any_uk_eyes |= m.releasability == Releasability::UkEyesOnly;
            nations = nations.intersection(&m.releasable_to(home));
        }
        let gbr = Nation::gbr();
        let releasability = if all_home {
            Releasability::Home
        } else if nations.is_empty() {
            Releasability::NotReleasable
        } else if any_uk_eyes && nations == [gbr].into_iter().collect() {
            Releasability::UkEyesOnly
        } else {
            // Home nation first, then alphabetical, as banners are usually written.
            let mut tokens = Vec::new();
            if nations.contains(home) {
                tokens.push(RelToken::Nation(home));
            }
            tokens.extend(nations.iter().filter(|n| *n != home).map(RelToken::Nation));
            Releasability::RelTo(tokens)
        };
        let sensitive = any_sensitive && classification == Classification::Official;
        let nations = expand(&releasability);
        Some(Marking {
            classification,
            sensitive,
            compartments,
            releasability,
            descriptors,
            nations,
        })
    }
}

fn parse_releasability(pos: usize, seg: &str) -> Result<Option<Releasability>, MarkingError> {
    match seg {
        "UK EYES ONLY" => return Ok(Some(Releasability::UkEyesOnly)),
        "FVEY" => return Ok(Some(Releasability::Fvey)),
        "NOT RELEASABLE" => return Ok(Some(Releasability::NotReleasable)),
        _ => {}
    }
    let Some(list) = seg.strip_prefix("REL TO") else {
        return Ok(None);
    };
    let Some(list) = list.strip_prefix(' ') else {
        return Err(MarkingError::new(
            pos + 6,
            "expected a space and a list of nations after REL TO",
        ));
    };
    let mut tokens = Vec::new();
    let mut off = pos + 7;
    for (i, tok) in list.split(", ").enumerate() {
        if i > 0 {
            off += 2;
        }
        let t = if tok == "FVEY" {
            RelToken::Fvey
        } else {
            match Nation::from_alpha3(tok) {
                Some(n) => RelToken::Nation(n),
                None => {
                    return Err(MarkingError::new(
                        off,
                        format!(
                            "{tok:?} is not an ISO 3166-1 alpha-3 nation code or FVEY (nations are separated by \", \")"
                        ),
                    ));
                }
            }
        };
        if tokens.contains(&t) {
            return Err(MarkingError::new(off, format!("{tok} repeated in REL TO")));
        }
        tokens.push(t);
        off += tok.len();
    }
    Ok(Some(Releasability::RelTo(tokens)))
}

fn fvey() -> NationSet {
    FVEY.iter().filter_map(|c| Nation::from_alpha3(c)).collect()
}

fn expand(r: &Releasability) -> NationSet {
    match r {
        Releasability::Home | Releasability::NotReleasable => NationSet::EMPTY,
        Releasability::UkEyesOnly => [Nation::gbr()].into_iter().collect(),
        Releasability::Fvey => fvey(),
        Releasability::RelTo(tokens) => {
            let mut s = NationSet::EMPTY;
            for t in tokens {
                match t {
                    RelToken::Nation(n) => s.insert(*n),
                    RelToken::Fvey => {
                        for n in fvey().iter() {
                            s.insert(n)
                        }
                    }
                }
            }
            s
        }
    }
}

impl fmt::Display for Marking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::str::FromStr for Marking {
    type Err = MarkingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Marking::parse(s)
    }
}

impl serde::Serialize for Marking {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.render())
    }
}

impl<'de> serde::Deserialize<'de> for Marking {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Marking::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) {
        let m = Marking::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(m.render(), s);
    }

    fn err(s: &str, position: usize, needle: &str) {
        let e = Marking::parse(s).expect_err(s);
        assert_eq!(e.position, position, "{s}: {e}");
        assert!(e.reason.contains(needle), "{s}: {e}");
    }

    #[test]
    fn accepts_and_round_trips() {
        ok("OFFICIAL");
        ok("OFFICIAL-SENSITIVE");
        ok("OFFICIAL-SENSITIVE//PERSONAL DATA");
        ok("SECRET//UK EYES ONLY");
        ok("TOP SECRET//STRAP1//REL TO GBR, USA");
        ok("TOP SECRET//STRAP1//REL TO GBR, USA, AUS, CAN, NZL");
        ok("TOP SECRET//STRAP2/STRAP1//UK EYES ONLY//PERSONAL DATA//LOCSEN");
        ok("SECRET//FVEY");
        ok("SECRET//REL TO GBR, FVEY");
        ok("SECRET//NOT RELEASABLE");
    }

    #[test]
    fn rejects_with_position() {
        err("", 0, "empty");
        err("secret", 0, "upper case");
        err("CONFIDENTIAL", 0, "unknown classification");
        err("SECRET//", 8, "empty segment");
        err("SECRET//REL TO GBR,USA", 15, "not an ISO");
        err("SECRET//REL TO GBR, XYZ", 20, "not an ISO");
        err("SECRET//REL TO GBR, GBR", 20, "repeated");
        err(
            "SECRET//UK EYES ONLY//STRAP1",
            22,
            "right after the classification",
        );
        err("SECRET//STRAP1/x", 15, "neither a codeword");
        err("SECRET//STRAP1/STRAP1", 15, "repeated");
        err("SECRET//UK EYES ONLY//REL TO USA", 22, "more than one");
        err(
            "SECRET//PERSONAL DATA//UK EYES ONLY",
            23,
            "before descriptors",
        );
        err("SECRET//REL TOGBR", 14, "space");
        err("SECRET// UK EYES ONLY", 8, "spaces");
    }

    #[test]
    fn fvey_expands() {
        let m = Marking::parse("SECRET//REL TO FVEY").unwrap();
        for c in FVEY {
            assert!(m.releasable(Nation::from_alpha3(c).unwrap(), Nation::gbr()));
        }
        assert!(!m.releasable(Nation::from_alpha3("FRA").unwrap(), Nation::gbr()));
    }

    #[test]
    fn covers_is_upgrade() {
        let home = Nation::gbr();
        let m = |s: &str| Marking::parse(s).unwrap();
        assert!(m("SECRET").covers(&m("OFFICIAL"), home));
        assert!(!m("OFFICIAL").covers(&m("SECRET"), home));
        assert!(m("SECRET//STRAP1").covers(&m("SECRET"), home));
        assert!(!m("SECRET").covers(&m("SECRET//STRAP1"), home));
        assert!(m("SECRET//UK EYES ONLY").covers(&m("SECRET//REL TO GBR, USA"), home));
        assert!(!m("SECRET//REL TO GBR, USA").covers(&m("SECRET//UK EYES ONLY"), home));
        assert!(m("OFFICIAL//NOT RELEASABLE").covers(&m("OFFICIAL//UK EYES ONLY"), home));
        assert!(m("OFFICIAL").covers(&m("OFFICIAL"), home));
        // Higher but wider is not an upgrade.
        assert!(!m("TOP SECRET//REL TO GBR, USA").covers(&m("SECRET//UK EYES ONLY"), home));
    }

    #[test]
    fn high_water_mark_examples() {
        let home = Nation::gbr();
        let a = Marking::parse("OFFICIAL-SENSITIVE//REL TO GBR, USA").unwrap();
        let b = Marking::parse("SECRET//STRAP1//REL TO GBR, USA, AUS").unwrap();
        let h = Marking::high_water_mark([&a, &b], home).unwrap();
        assert_eq!(h.render(), "SECRET//STRAP1//REL TO GBR, USA");
        let c = Marking::parse("OFFICIAL//UK EYES ONLY").unwrap();
        let h = Marking::high_water_mark([&a, &c], home).unwrap();
        assert_eq!(h.render(), "OFFICIAL-SENSITIVE//UK EYES ONLY");
        let d = Marking::parse("OFFICIAL//REL TO USA").unwrap();
        let h = Marking::high_water_mark([&c, &d], home).unwrap();
        assert_eq!(h.render(), "OFFICIAL//NOT RELEASABLE");
    }
}
