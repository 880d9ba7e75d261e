//! Nations as ISO 3166-1 alpha-3 codes, packed into a bit set so that
//! releasability checks cost one bit test.

use std::fmt;

/// ISO 3166-1 alpha-3 codes, in alphabetical order. The index of a code in this
/// table is its bit in a [`NationSet`].
const ALPHA3: [&str; 249] = [
    "ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ARE", "ARG", "ARM", "ASM", "ATA", "ATF",
    "ATG", "AUS", "AUT", "AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR", "BHR", "BHS",
    "BIH", "BLM", "BLR", "BLZ", "BMU", "BOL", "BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF",
    "CAN", "CCK", "CHE", "CHL", "CHN", "CIV", "CMR", "COD", "COG", "COK", "COL", "COM", "CPV",
    "CRI", "CUB", "CUW", "CXR", "CYM", "CYP", "CZE", "DEU", "DJI", "DMA", "DNK", "DOM", "DZA",
    "ECU", "EGY", "ERI", "ESH", "ESP", "EST", "ETH", "FIN", "FJI", "FLK", "FRA", "FRO", "FSM",
    "GAB", "GBR", "GEO", "GGY", "GHA", "GIB", "GIN", "GLP", "GMB", "GNB", "GNQ", "GRC", "GRD",
    "GRL", "GTM", "GUF", "GUM", "GUY", "HKG", "HMD", "HND", "HRV", "HTI", "HUN", "IDN", "IMN",
    "IND", "IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA", "JAM", "JEY", "JOR", "JPN", "KAZ",
    "KEN", "KGZ", "KHM", "KIR", "KNA", "KOR", "KWT", "LAO", "LBN", "LBR", "LBY", "LCA", "LIE",
    "LKA", "LSO", "LTU", "LUX", "LVA", "MAC", "MAF", "MAR", "MCO", "MDA", "MDG", "MDV", "MEX",
    "MHL", "MKD", "MLI", "MLT", "MMR", "MNE", "MNG", "MNP", "MOZ", "MRT", "MSR", "MTQ", "MUS",
    "MWI", "MYS", "MYT", "NAM", "NCL", "NER", "NFK", "NGA", "NIC", "NIU", "NLD", "NOR", "NPL",
    "NRU", "NZL", "OMN", "PAK", "PAN", "PCN", "PER", "PHL", "PLW", "PNG", "POL", "PRI", "PRK",
    "PRT", "PRY", "PSE", "PYF", "QAT", "REU", "ROU", "RUS", "RWA", "SAU", "SDN", "SEN", "SGP",
    "SGS", "SHN", "SJM", "SLB", "SLE", "SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR",
    "SVK", "SVN", "SWE", "SWZ", "SXM", "SYC", "SYR", "TCA", "TCD", "TGO", "THA", "TJK", "TKL",
    "TKM", "TLS", "TON", "TTO", "TUN", "TUR", "TUV", "TWN", "TZA", "UGA", "UKR", "UMI", "URY",
    "USA", "UZB", "VAT", "VCT", "VEN", "VGB", "VIR", "VNM", "VUT", "WLF", "WSM", "YEM", "ZAF",
    "ZMB", "ZWE",
];

/// The Five Eyes partners that the `FVEY` token stands for.
pub const FVEY: [&str; 5] = ["GBR", "USA", "CAN", "AUS", "NZL"];

/// A nation, by its ISO 3166-1 alpha-3 code. Cheap to copy and compare, so
/// principals and markings can carry it without allocation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nation(u8);

impl Nation {
    /// Parses an upper-case alpha-3 code; `None` if it is not an ISO 3166-1 code.
    pub fn from_alpha3(code: &str) -> Option<Nation> {
        ALPHA3
            .binary_search(&code)
            .ok()
            .and_then(|i| u8::try_from(i).ok())
            .map(Nation)
    }

    /// The alpha-3 code, as written in banners.
    pub fn alpha3(self) -> &'static str {
        ALPHA3[usize::from(self.0)]
    }

    /// The United Kingdom, the platform's home nation unless configured.
    pub fn gbr() -> Nation {
        Nation::from_alpha3("GBR").expect("GBR is in the ISO table")
    }

    /// Every known nation, for tests and generators.
    pub fn all() -> impl Iterator<Item = Nation> {
        (0..ALPHA3.len())
            .filter_map(|i| u8::try_from(i).ok())
            .map(Nation)
    }
}

impl fmt::Display for Nation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha3())
    }
}

impl fmt::Debug for Nation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha3())
    }
}

impl serde::Serialize for Nation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.alpha3())
    }
}

impl<'de> serde::Deserialize<'de> for Nation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Nation::from_alpha3(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown nation code {s:?}")))
    }
}

/// A set of nations as a 256-bit set: membership is one bit test, intersection
/// four word ANDs.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Debug)]
pub struct NationSet([u64; 4]);

impl NationSet {
    /// The empty set.
    pub const EMPTY: NationSet = NationSet([0; 4]);

    /// Adds a nation.
    pub fn insert(&mut self, n: Nation) {
        self.0[usize::from(n.0 >> 6)] |= 1u64 << (n.0 & 63);
    }

    /// Whether the set holds `n`.
    #[inline]
    pub fn contains(&self, n: Nation) -> bool {
        self.0[usize::from(n.0 >> 6)] & (1u64 << (n.0 & 63)) != 0
    }

    /// Nations in both sets.
    pub fn intersection(&self, other: &NationSet) -> NationSet {
        let mut out = [0u64; 4];
        for (i, w) in out.iter_mut().enumerate() {
            *w = self.0[i] & other.0[i];
        }
        NationSet(out)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// The members in alphabetical order.
    pub fn iter(&self) -> impl Iterator<Item = Nation> + '_ {
        Nation::all().filter(|n| self.contains(*n))
    }
}

impl FromIterator<Nation> for NationSet {
    fn from_iter<I: IntoIterator<Item = Nation>>(iter: I) -> Self {
        let mut s = NationSet::EMPTY;
        for n in iter {
            s.insert(n);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(ALPHA3.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn round_trips_codes() {
        for n in Nation::all() {
            assert_eq!(Nation::from_alpha3(n.alpha3()), Some(n));
        }
        assert_eq!(Nation::from_alpha3("XXX"), None);
        assert_eq!(Nation::from_alpha3("gbr"), None);
    }
}
