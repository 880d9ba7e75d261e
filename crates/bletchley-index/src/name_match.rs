//! Names across scripts: one Latin key for a name written in Arabic, Persian, Cyrillic, Greek
//! or Latin with diacritics, and a similarity that tolerates the ways one name is spelled.
//!
//! Transliteration is `any_ascii`'s (every script to ASCII). What it cannot restore is what the
//! writing leaves out: Arabic and Persian script write no short vowels (محمد is "mhmd"), so a
//! name is compared by its *skeleton* — consonants only, with the spellings that differ between
//! transliteration schemes folded together (ph/f, q/k, kh/h, ou/u, doubled letters, a final h) —
//! whenever either side was written in such a script, and by its full Latin letters (with the
//! skeleton as a lesser witness) when both were written in alphabets with vowels. Tokens are
//! aligned one to one, the shorter name's against the longer's, so "Mohammed bin Salman" matches
//! "Mohammed bin Salman Al Saud" as the same person named more fully. Precision and recall are
//! measured on a labelled fixture of pairs (`tests/fixtures/name_pairs.tsv`).

use std::collections::BTreeSet;

/// A name prepared for matching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameKey {
    /// Lower-case ASCII words (transliterated, diacritics and punctuation gone).
    pub latin: Vec<String>,
    /// The consonant skeleton of each word.
    pub skeleton: Vec<String>,
    /// Whether the name was written in a script without short vowels (Arabic, Persian, Urdu,
    /// Hebrew, Syriac): only skeletons are comparable then.
    pub abjad: bool,
}

/// Greek letter pairs that a letter-by-letter transliteration renders apart from the usual
/// Latin spelling.
const GREEK: &[(&str, &str)] = &[
    ("ου", "ou"),
    ("ού", "ou"),
    ("Ου", "Ou"),
    ("Γιά", "Ya"),
    ("Για", "Ya"),
    ("Γιώ", "Yo"),
    ("Γιω", "Yo"),
    ("Γιό", "Yo"),
    ("Γιο", "Yo"),
];

/// Names this similar or more are taken to be the same (chosen on the fixture; see the test).
pub const SAME_NAME: f64 = 0.86;

/// Words that join or title names rather than name anyone.
const PARTICLES: &[&str] = &["al", "el", "ul", "ad", "ud", "the", "mr", "mrs", "dr"];

fn is_abjad(c: char) -> bool {
    matches!(c as u32,
        0x0590..=0x05FF // Hebrew
        | 0x0600..=0x06FF // Arabic, Persian, Urdu
        | 0x0700..=0x074F // Syriac
        | 0x0750..=0x077F // Arabic supplement
        | 0x08A0..=0x08FF // Arabic extended
        | 0xFB50..=0xFDFF // Arabic presentation forms
        | 0xFE70..=0xFEFF)
}

impl NameKey {
    /// Prepares a name as written.
    pub fn new(name: &str) -> NameKey {
        let abjad = name.chars().any(is_abjad);
        // Greek ου is one vowel, u; letter by letter it would be "oy".
        // Before a vowel, γι is the sound y: Γιάνης is Yanis.
        let mut name = name.to_owned();
        for (from, to) in GREEK {
            name = name.replace(from, to);
        }
        // The Arabic article is written joined to its word (القذافي, al-Qadhafi); Latin spellings
        // drop it or write it apart, where it is a particle.
        let unjoined: String = name
            .split(' ')
            .map(|w| match w.strip_prefix("ال") {
                Some(rest) if rest.chars().count() >= 2 => rest,
                _ => w,
            })
            .collect::<Vec<_>>()
            .join(" ");
        let ascii = any_ascii::any_ascii(&unjoined).to_lowercase();
        let latin: Vec<String> = ascii
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '\'' && c != '`')
            .map(|w| {
                w.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
            })
            .filter(|w| !w.is_empty() && !PARTICLES.contains(&w.as_str()))
            .collect();
        let skeleton = latin.iter().map(|w| skeleton(w)).collect();
        NameKey {
            latin,
            skeleton,
            abjad,
        }
    }

    /// The key as one string: the skeletons in order (for grouping candidates).
    pub fn key(&self) -> String {
        self.skeleton.join(" ")
    }

    /// Skeleton words, for finding candidates by shared words.
    pub fn words(&self) -> BTreeSet<&str> {
        self.skeleton
            .iter()
            .map(String::as_str)
            .filter(|w| !w.is_empty())
            .collect()
    }
}

/// Spellings that differ only by transliteration scheme, folded to one.
const FOLDS: &[(&str, &str)] = &[
    ("ph", "f"),
    ("kh", "h"),
    ("gh", "g"),
    ("sh", "s"),
    ("ch", "c"),
    ("zh", "z"),
    ("th", "t"),
    ("dh", "d"),
    ("ts", "c"),
    ("tz", "c"),
    ("ck", "k"),
    ("q", "k"),
    ("x", "ks"),
    ("j", "g"),
];

/// A word's consonants after folding: vowels gone (and `y` and `w` after the first letter,
/// which Arabic script uses as long vowels), a letter doubled in the word written once, and a
/// final h dropped. A word of vowels only keeps its first letter.
fn skeleton(word: &str) -> String {
    let mut w = word.to_owned();
    for (from, to) in FOLDS {
        w = w.replace(from, to);
    }
    let mut out = String::with_capacity(w.len());
    let mut last = '\0';
    for (i, c) in w.chars().enumerate() {
        let vowel = matches!(c, 'a' | 'e' | 'i' | 'o' | 'u') || (i > 0 && matches!(c, 'y' | 'w'));
        if !vowel && c != last {
            out.push(c);
        }
        last = c;
    }
    // The Arabic feminine ending (ة, "h") has no letter in most Latin spellings.
    if out.len() > 1 && out.ends_with('h') {
        out.pop();
    }
    if out.is_empty() {
        word.chars().take(1).collect()
    } else {
        out
    }
}

/// Jaro-Winkler similarity of two words (1 for equal ones).
fn word_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        1.0
    } else if a.is_empty() || b.is_empty() {
        0.0
    } else {
        strsim::jaro_winkler(a, b)
    }
}

/// How two names' words pair up: the best one-to-one pairing of the shorter list's words with
/// the longer's (greedy by best pair first: names have few words).
struct Alignment {
    /// Mean similarity of the pairs.
    mean: f64,
    /// The least similar pair: one clearly different word makes a different person.
    least: f64,
    /// Whether the pairs cross (the words in another order).
    crossed: bool,
}

fn aligned(a: &[String], b: &[String]) -> Alignment {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return Alignment {
            mean: 0.0,
            least: 0.0,
            crossed: false,
        };
    }
    let mut pairs: Vec<(f64, usize, usize)> = Vec::with_capacity(short.len() * long.len());
    for (i, x) in short.iter().enumerate() {
        for (j, y) in long.iter().enumerate() {
            pairs.push((word_similarity(x, y), i, j));
        }
    }
    pairs.sort_by(|p, q| q.0.total_cmp(&p.0).then((p.1, p.2).cmp(&(q.1, q.2))));
    let mut partner: Vec<Option<usize>> = vec![None; short.len()];
    let mut used_long = vec![false; long.len()];
    let (mut total, mut least) = (0.0, 1.0f64);
    for (s, i, j) in pairs {
        if partner[i].is_some() || used_long[j] {
            continue;
        }
        partner[i] = Some(j);
        used_long[j] = true;
        total += s;
        least = least.min(s);
    }
    let order: Vec<usize> = partner.into_iter().flatten().collect();
    Alignment {
        mean: total / short.len() as f64,
        least,
        crossed: order.windows(2).any(|w| w[0] > w[1]),
    }
}

/// How alike two names are, from 0 to 1; [`SAME_NAME`] and above is taken as one person.
pub fn similarity(a: &NameKey, b: &NameKey) -> f64 {
    let words = a.latin.len().min(b.latin.len());
    let al = if a.abjad || b.abjad {
        aligned(&a.skeleton, &b.skeleton)
    } else {
        // Both written with vowels: the letters decide.
        aligned(&a.latin, &b.latin)
    };
    let mut score = (al.mean + al.least) / 2.0;
    // A single word matching one word of a long name says little: "Ali" is half the region.
    if words == 1 && a.latin.len().max(b.latin.len()) > 1 {
        score *= 0.9;
    }
    // "Ali Hassan" and "Hassan Ali" are different men as often as they are one.
    if al.crossed {
        score *= 0.85;
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeletons_fold_transliteration_variants() {
        assert_eq!(skeleton("mohammed"), "mhmd");
        assert_eq!(skeleton("muhammad"), "mhmd");
        assert_eq!(skeleton("mhmd"), "mhmd");
        assert_eq!(skeleton("fatimah"), "ftm");
        assert_eq!(skeleton("phatima"), "ftm");
        assert_eq!(skeleton("osama"), "sm");
        assert_eq!(skeleton("a"), "a");
    }

    #[test]
    fn scripts_meet_in_one_key() {
        let ar = NameKey::new("محمد بن سلمان");
        let la = NameKey::new("Mohammed bin Salman");
        assert!(ar.abjad && !la.abjad);
        assert!(
            similarity(&ar, &la) >= SAME_NAME,
            "{}",
            similarity(&ar, &la)
        );
        let ru = NameKey::new("Сергей Лавров");
        assert_eq!(ru.latin, ["sergey", "lavrov"]);
        assert!(similarity(&ru, &NameKey::new("Sergei Lavrov")) >= SAME_NAME);
        assert!(similarity(&ru, &NameKey::new("Sergei Shoigu")) < SAME_NAME);
        assert_eq!(NameKey::new("Zürich").latin, ["zurich"]);
    }

    /// Precision and recall on the labelled pairs at [`SAME_NAME`], counted here.
    #[test]
    fn precision_and_recall_on_the_labelled_pairs() {
        let text = include_str!("../tests/fixtures/name_pairs.tsv");
        let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 3, "{line}");
            let s = similarity(&NameKey::new(f[0]), &NameKey::new(f[1]));
            let same = f[2] == "1";
            match (s >= SAME_NAME, same) {
                (true, true) => tp += 1,
                (true, false) => {
                    fp += 1;
                    eprintln!("false match {s:.3}: {} / {}", f[0], f[1]);
                }
                (false, true) => {
                    fn_ += 1;
                    eprintln!("missed {s:.3}: {} / {}", f[0], f[1]);
                }
                (false, false) => tn += 1,
            }
        }
        let precision = tp as f64 / (tp + fp) as f64;
        let recall = tp as f64 / (tp + fn_) as f64;
        eprintln!(
            "names across scripts: precision {precision:.3} recall {recall:.3} ({tp} found, {fp} false, {fn_} missed, {tn} rejected)"
        );
        assert!(
            precision >= 0.9 && recall >= 0.85,
            "precision {precision} recall {recall}"
        );
    }
}
