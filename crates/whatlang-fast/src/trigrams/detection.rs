use hashbrown::HashMap;

use super::LangProfileList;
use super::utils::{TrigramsWithPositions, get_trigrams_with_positions, pack};
use super::{ARABIC_LANGS, CYRILLIC_LANGS, DEVANAGARI_LANGS, HEBREW_LANGS, LATIN_LANGS};
use super::{MAX_TOTAL_DISTANCE, MAX_TRIGRAM_DISTANCE};
use crate::Lang;
use crate::core::{FilterList, Info, InternalQuery, Text, calculate_confidence};
use crate::scripts::grouping::MultiLangScript;

#[derive(Debug)]
pub struct RawOutcome {
    pub trigrams_count: usize,
    #[allow(dead_code)]
    pub raw_distances: Vec<(Lang, u32)>,
    pub scores: Vec<(Lang, f64)>,
}

#[inline]
pub fn detect(iquery: &InternalQuery) -> Option<Info> {
    let raw_outcome = raw_detect(iquery);
    let RawOutcome {
        trigrams_count,
        scores,
        ..
    } = raw_outcome;

    let mut raw_scores_iter = scores.into_iter();

    let opt_lang_score1 = raw_scores_iter.next();
    let opt_lang_score2 = raw_scores_iter.next();

    // TODO: Logic is duplicated in alphabets. Consider refactoring
    opt_lang_score1.map(|(lang1, score1)| {
        let script = iquery.multi_lang_script.to_script();
        let confidence = if let Some((_, score2)) = opt_lang_score2 {
            calculate_confidence(score1, score2, trigrams_count)
        } else {
            1.0
        };
        Info::new(script, lang1, confidence)
    })
}

#[inline]
pub fn raw_detect(iquery: &InternalQuery) -> RawOutcome {
    calculate_scores_in_profiles(
        &iquery.text,
        iquery.filter_list,
        profile_index(iquery.multi_lang_script),
    )
}

fn script_to_lang_profile_list(script: MultiLangScript) -> LangProfileList {
    use MultiLangScript as MLS;
    match script {
        MLS::Latin => LATIN_LANGS,
        MLS::Cyrillic => CYRILLIC_LANGS,
        MLS::Arabic => ARABIC_LANGS,
        MLS::Devanagari => DEVANAGARI_LANGS,
        MLS::Hebrew => HEBREW_LANGS,
    }
}

/// The profiles of one script turned inside out: for each trigram, the languages whose
/// profile has it and its rank there. Upstream whatlang looks each of every language's 300
/// profile trigrams up in the text's trigrams (about 12,000 lookups for a Latin text, whatever
/// its length); this walks the text's own trigrams once instead, and reaches only the
/// languages that share them. The distance is the same integer: see
/// `calculate_scores_in_profiles`.
pub(crate) struct ProfileIndex {
    /// The script's languages in profile-list order, with their profile's length.
    langs: Vec<(Lang, u32)>,
    /// Packed trigram -> (position in `langs`, rank in that language's profile).
    postings: HashMap<u64, Vec<(u16, u16)>>,
}

impl ProfileIndex {
    fn build(list: LangProfileList) -> ProfileIndex {
        let mut postings: HashMap<u64, Vec<(u16, u16)>> = HashMap::new();
        for (k, &(_, profile)) in list.iter().enumerate() {
            for (i, &trigram) in profile.iter().enumerate() {
                postings
                    .entry(pack(trigram))
                    .or_default()
                    .push((k as u16, i as u16));
            }
        }
        ProfileIndex {
            langs: list
                .iter()
                .map(|&(lang, profile)| (lang, profile.len() as u32))
                .collect(),
            postings,
        }
    }
}

/// The index of `script`'s profiles, built once.
pub(crate) fn profile_index(script: MultiLangScript) -> &'static ProfileIndex {
    use MultiLangScript as MLS;
    use std::sync::OnceLock;
    static INDEXES: [OnceLock<ProfileIndex>; 5] = [const { OnceLock::new() }; 5];
    let slot = match script {
        MLS::Latin => 0,
        MLS::Cyrillic => 1,
        MLS::Arabic => 2,
        MLS::Devanagari => 3,
        MLS::Hebrew => 4,
    };
    INDEXES[slot].get_or_init(|| ProfileIndex::build(script_to_lang_profile_list(script)))
}

#[inline]
fn calculate_scores_in_profiles(
    text: &Text,
    filter_list: &FilterList,
    index: &ProfileIndex,
) -> RawOutcome {
    let mut lang_distances: Vec<(Lang, u32)> = vec![];

    let TrigramsWithPositions {
        trigram_positions, ..
    } = get_trigrams_with_positions(&text.lowercase());
    let unique_trigrams_count = trigram_positions.len();

    // Upstream sums, over each profile trigram at rank i, |n - i| when the text has it at
    // rank n and MAX_TRIGRAM_DISTANCE when not. That is len * MAX less, for the trigrams both
    // have, MAX - |n - i| (negative when the ranks are further apart than MAX).
    let mut gain = vec![0i64; index.langs.len()];
    for &(trigram, n) in &trigram_positions {
        if let Some(found) = index.postings.get(&trigram) {
            for &(k, i) in found {
                gain[k as usize] +=
                    i64::from(MAX_TRIGRAM_DISTANCE) - (i64::from(n) - i64::from(i)).abs();
            }
        }
    }

    for (k, &(lang, len)) in index.langs.iter().enumerate() {
        if !filter_list.is_allowed(lang) {
            continue;
        }
        let total = i64::from(len) * i64::from(MAX_TRIGRAM_DISTANCE) - gain[k];
        let dist = finish_distance(total as u32, unique_trigrams_count as u32);
        lang_distances.push((lang, dist));
    }

    // Sort languages by distance
    lang_distances.sort_unstable_by_key(|(_, dist)| *dist);

    let max_dist = unique_trigrams_count as u32 * MAX_TRIGRAM_DISTANCE;

    let raw_scores = lang_distances
        .iter()
        .map(|&(lang, distance)| (lang, distance_to_raw_score(distance, max_dist)))
        .collect();

    RawOutcome {
        trigrams_count: unique_trigrams_count,
        scores: raw_scores,
        raw_distances: lang_distances,
    }
}

/// Upstream's correction for texts with fewer trigrams than a profile, and its clamp.
#[inline]
fn finish_distance(mut total_dist: u32, count: u32) -> u32 {
    if MAX_TRIGRAM_DISTANCE > count {
        let delta = MAX_TRIGRAM_DISTANCE - count;
        total_dist -= delta * MAX_TRIGRAM_DISTANCE;
    }

    total_dist.clamp(0, MAX_TOTAL_DISTANCE)
}

#[inline]
fn distance_to_raw_score(distance: u32, max_distance: u32) -> f64 {
    let similarity = max_distance - distance;
    similarity as f64 / max_distance as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_when_german_is_given() {
        let text = "Die Ordnung muss für immer in diesem Codebase bleiben";
        let iq = InternalQuery {
            text: Text::new(text),
            filter_list: &FilterList::default(),
            multi_lang_script: MultiLangScript::Latin,
        };
        let raw_outcome = raw_detect(&iq);

        assert_eq!(raw_outcome.trigrams_count, 50);

        let &(first_lang, first_score) = raw_outcome.scores.first().unwrap();
        let &(_last_lang, last_score) = raw_outcome.scores.last().unwrap();

        assert_eq!(first_lang, Lang::Deu);

        assert!(first_score >= 0.0);
        assert!(first_score <= 1.0);

        assert!(last_score >= 0.0);
        assert!(last_score <= 1.0);
    }
}
