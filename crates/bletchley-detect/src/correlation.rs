//! Correlation rules: thresholds over other rules' detections within a time window,
//! per group (`event_count`, `value_count`, `temporal`, `temporal_ordered`).

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::rule::{Correlation, CorrelationKind};

/// One detection as a correlation sees it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The position of the detection rule (as the engine numbers them).
    pub rule: usize,
    /// When the event happened.
    pub time: OffsetDateTime,
    /// The values of the correlation's group-by fields (empty text where absent).
    pub group: Vec<String>,
    /// The value of a `value_count` field, where it has one.
    pub value: Option<String>,
    /// The caller's handle on the event (its position in the caller's list).
    pub handle: usize,
}

/// A correlation that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// The group-by values.
    pub group: Vec<String>,
    /// The window's first and last event times.
    pub first: OffsetDateTime,
    /// See `first`.
    pub last: OffsetDateTime,
    /// How many events, or distinct values, were counted.
    pub count: usize,
    /// The handles of the events in the window.
    pub events: Vec<usize>,
}

/// Runs one correlation over detections (any order; `refs` are the positions of the
/// rules it names, in the order it names them).
pub fn correlate(c: &Correlation, refs: &[usize], seen: &[Seen]) -> Vec<Fired> {
    let mut groups: BTreeMap<&[String], Vec<&Seen>> = BTreeMap::new();
    for s in seen.iter().filter(|s| refs.contains(&s.rule)) {
        groups.entry(&s.group).or_default().push(s);
    }
    let span = time::Duration::try_from(c.timespan).unwrap_or(time::Duration::MAX);
    let mut out = Vec::new();
    for (group, mut events) in groups {
        events.sort_by_key(|s| (s.time, s.handle));
        let mut start = 0;
        let mut i = 0;
        while i < events.len() {
            while events[i].time - events[start].time > span {
                start += 1;
            }
            let window = &events[start..=i];
            let (holds, count) = match &c.kind {
                CorrelationKind::EventCount => {
                    let n = window.len();
                    (threshold(c, n), n)
                }
                CorrelationKind::ValueCount(_) => {
                    let n = window
                        .iter()
                        .filter_map(|s| s.value.as_deref())
                        .collect::<BTreeSet<_>>()
                        .len();
                    (threshold(c, n), n)
                }
                CorrelationKind::Temporal => {
                    let all = refs.iter().all(|r| window.iter().any(|s| s.rule == *r));
                    (all, window.len())
                }
                CorrelationKind::TemporalOrdered => {
                    let mut next = 0;
                    for s in window {
                        if next < refs.len() && s.rule == refs[next] {
                            next += 1;
                        }
                    }
                    (next == refs.len(), window.len())
                }
            };
            if holds {
                out.push(Fired {
                    group: group.to_vec(),
                    first: window[0].time,
                    last: window[window.len() - 1].time,
                    count,
                    events: window.iter().map(|s| s.handle).collect(),
                });
                // A burst fires once: the next window starts after this one.
                start = i + 1;
            }
            i += 1;
        }
    }
    out
}

fn threshold(c: &Correlation, n: usize) -> bool {
    c.threshold.iter().all(|(op, v)| op.holds(n as f64, *v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::Compare;
    use std::time::Duration;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
    }

    fn seen(rule: usize, t: i64, user: &str, value: &str, handle: usize) -> Seen {
        Seen {
            rule,
            time: at(t),
            group: vec![user.to_owned()],
            value: Some(value.to_owned()),
            handle,
        }
    }

    fn corr(kind: CorrelationKind, gte: f64, span: u64) -> Correlation {
        Correlation {
            kind,
            rules: vec!["a".into(), "b".into()],
            group_by: vec!["User".into()],
            aliases: Default::default(),
            timespan: Duration::from_secs(span),
            threshold: vec![(Compare::Gte, gte)],
            generate: false,
        }
    }

    #[test]
    fn event_count_fires_per_group_within_the_window() {
        let c = corr(CorrelationKind::EventCount, 3.0, 60);
        let s = vec![
            seen(0, 0, "alice", "x", 0),
            seen(0, 10, "alice", "x", 1),
            seen(0, 20, "bob", "x", 2),
            seen(0, 30, "alice", "x", 3),
            seen(0, 200, "alice", "x", 4),
        ];
        let f = correlate(&c, &[0], &s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].group, vec!["alice".to_owned()]);
        assert_eq!(f[0].events, vec![0, 1, 3]);
        // Spread wider than the window: nothing.
        let c = corr(CorrelationKind::EventCount, 3.0, 15);
        assert!(correlate(&c, &[0], &s).is_empty());
    }

    #[test]
    fn value_count_counts_distinct_values() {
        let c = corr(CorrelationKind::ValueCount("Host".into()), 2.0, 60);
        let same = vec![seen(0, 0, "u", "h1", 0), seen(0, 1, "u", "h1", 1)];
        assert!(correlate(&c, &[0], &same).is_empty());
        let two = vec![seen(0, 0, "u", "h1", 0), seen(0, 1, "u", "h2", 1)];
        assert_eq!(correlate(&c, &[0], &two).len(), 1);
    }

    #[test]
    fn temporal_needs_every_rule_and_ordered_needs_their_order() {
        let c = corr(CorrelationKind::Temporal, 0.0, 60);
        let ba = vec![seen(1, 0, "u", "", 0), seen(0, 5, "u", "", 1)];
        assert_eq!(correlate(&c, &[0, 1], &ba).len(), 1);
        assert!(correlate(&c, &[0, 1], &ba[..1]).is_empty());
        let o = corr(CorrelationKind::TemporalOrdered, 0.0, 60);
        assert!(correlate(&o, &[0, 1], &ba).is_empty());
        let ab = vec![seen(0, 0, "u", "", 0), seen(1, 5, "u", "", 1)];
        assert_eq!(correlate(&o, &[0, 1], &ab).len(), 1);
    }
}
