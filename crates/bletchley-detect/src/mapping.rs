//! The field mapping: which events a rule's `logsource` means, and where the fields a
//! rule names are found in a record. It is data (`mappings/default.yml`), so an
//! operator with other logs writes a mapping, not code.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::event::{Event, Origin, Value};
use crate::rule::{LogSource, PlaceholderMap};

/// The mapping that ships with the engine.
pub const DEFAULT: &str = include_str!("../mappings/default.yml");

/// A mapping file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// Not readable.
    #[error("mapping {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a mapping.
    #[error("mapping {path}: {source}")]
    Yaml {
        /// The file.
        path: String,
        /// Where and why.
        source: serde_yaml_ng::Error,
    },
}

/// How records of one JSON shape become fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonShape {
    /// Where the record's time is (the first path that exists).
    #[serde(default, deserialize_with = "one_or_many")]
    pub time: Vec<String>,
    /// Field name to dotted path.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Objects whose members are fields under their own names (`""`: the whole record,
    /// members by dotted path).
    #[serde(default)]
    pub flatten: Vec<String>,
}

/// Fields that some events write under other names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// The events this applies to.
    pub when: BTreeMap<String, String>,
    /// Alias to the field it copies.
    pub fields: BTreeMap<String, String>,
}

/// A field holding `NAME=value` pairs, made into fields of their own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// The field.
    pub field: String,
    /// Between pairs.
    pub separator: String,
    /// Between a name and its value.
    pub pairs: String,
    /// Pair name to field name.
    pub names: BTreeMap<String, String>,
}

/// One logsource's entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSourceEntry {
    /// The logsource, as rules write it.
    pub logsource: LogSourceKey,
    /// Event filters, any one of which selects an event (`{}` selects every event).
    pub events: Vec<BTreeMap<String, String>>,
    /// The fields such events have, where the schema is closed.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

/// A logsource in a mapping file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct LogSourceKey {
    /// `product`
    pub product: Option<String>,
    /// `category`
    pub category: Option<String>,
    /// `service`
    pub service: Option<String>,
}

/// A mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Its name, printed with reports.
    pub name: String,
    /// EVTX records as JSON.
    pub evtx: JsonShape,
    /// JSON Lines records.
    pub jsonl: JsonShape,
    /// Per-event aliases.
    #[serde(default)]
    pub aliases: Vec<Alias>,
    /// Fields split into several.
    #[serde(default)]
    pub splits: Vec<Split>,
    /// Values of `expand` placeholders.
    #[serde(default)]
    pub placeholders: PlaceholderMap,
    /// The logsources.
    pub logsources: Vec<LogSourceEntry>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl Mapping {
    /// The mapping that ships with the engine.
    pub fn builtin() -> Mapping {
        #[allow(clippy::expect_used)]
        Mapping::parse("default.yml", DEFAULT)
            .expect("the built-in mapping parses (a unit test proves it)")
    }

    /// Reads a mapping from text.
    pub fn parse(path: &str, text: &str) -> Result<Mapping, MappingError> {
        serde_yaml_ng::from_str(text).map_err(|source| MappingError::Yaml {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Mapping::parse(&path.display().to_string(), &text)
    }

    /// The entry for a rule's logsource: the exact one.
    pub fn logsource(&self, ls: &LogSource) -> Option<(usize, &LogSourceEntry)> {
        let norm = |s: &Option<String>| s.as_ref().map(|x| x.to_ascii_lowercase());
        self.logsources.iter().enumerate().find(|(_, e)| {
            norm(&e.logsource.product) == norm(&ls.product)
                && norm(&e.logsource.category) == norm(&ls.category)
                && norm(&e.logsource.service) == norm(&ls.service)
        })
    }

    /// The fields any event filter or alias condition reads: their values decide which
    /// logsources an event belongs to, so they key the per-thread dispatch cache.
    pub fn dispatch_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.logsources {
            for f in &e.events {
                out.extend(f.keys().cloned());
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Whether an event passes an event filter.
    pub fn filter_matches(filter: &BTreeMap<String, String>, event: &Event) -> bool {
        filter.iter().all(|(k, want)| {
            event
                .get(k)
                .is_some_and(|vals| vals.iter().any(|v| v.text.eq_ignore_ascii_case(want)))
        })
    }

    /// An event from an EVTX record rendered as JSON.
    pub fn event_from_evtx(&self, json: Json, origin: Origin) -> Event {
        self.event_from_json(&self.evtx, json, origin)
    }

    /// An event from one JSON Lines record.
    pub fn event_from_jsonl(&self, json: Json, origin: Origin) -> Event {
        self.event_from_json(&self.jsonl, json, origin)
    }

    fn event_from_json(&self, shape: &JsonShape, json: Json, origin: Origin) -> Event {
        let mut e = Event::new(origin, Json::Null);
        for (name, path) in &shape.fields {
            if let Some(v) = at_path(&json, path) {
                e.push_json(name, v, 0);
            }
        }
        for path in &shape.flatten {
            if let Some(v) = at_path(&json, path) {
                if path.is_empty() {
                    e.push_json("", v, 0);
                } else if let Json::Object(map) = v {
                    for (k, child) in map {
                        // UserData holds one object named after the event's template.
                        if matches!(child, Json::Object(_)) && path.ends_with("UserData") {
                            e.push_json("", child, 0);
                        } else {
                            e.push_json(k, child, 0);
                        }
                    }
                } else {
                    // EventData that is only text (classic events) reads as `Data`.
                    e.push_json("Data", v, 0);
                }
            }
        }
        e.time = shape.time.iter().find_map(|p| {
            at_path(&json, p)
                .and_then(Json::as_str)
                .and_then(parse_time)
        });
        self.derive(&mut e);
        e.raw = json;
        e
    }

    /// Applies aliases and splits to an event a reader built.
    pub fn derive(&self, e: &mut Event) {
        for a in &self.aliases {
            if Mapping::filter_matches(&a.when, e) {
                for (alias, from) in &a.fields {
                    e.alias(alias, from);
                }
            }
        }
        for s in &self.splits {
            let Some(vals) = e.get(&s.field).map(<[Value]>::to_vec) else {
                continue;
            };
            for v in vals {
                for pair in v.text.split(s.separator.as_str()) {
                    if let Some((k, val)) = pair.split_once(s.pairs.as_str())
                        && let Some(name) = s.names.get(k.trim())
                    {
                        e.push(name, Value::text(val.trim()));
                    }
                }
            }
        }
    }

    /// The logsource entries an event belongs to, by position.
    pub fn logsources_of(&self, e: &Event) -> Vec<usize> {
        self.logsources
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.events.iter().any(|f| Mapping::filter_matches(f, e)))
            .map(|(i, _)| i)
            .collect()
    }
}

/// A dotted path into JSON (`#attributes` and `#text` are looked through).
fn at_path<'a>(json: &'a Json, path: &str) -> Option<&'a Json> {
    if path.is_empty() {
        return Some(json);
    }
    let mut cur = json;
    for part in path.split('.') {
        let obj = cur.as_object()?;
        cur = match obj.get(part) {
            Some(v) => v,
            None => obj
                .get("#attributes")
                .and_then(|a| a.get(part))
                .or_else(|| obj.get(path))?,
        };
    }
    if let Some(t) = cur.as_object().and_then(|o| o.get("#text")) {
        return Some(t);
    }
    Some(cur)
}

/// Reads an RFC 3339 time (`2025-12-11T06:17:19.772545Z`) or the same with a space.
pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(&s.replacen(' ', "T", 1), &Rfc3339))
        .ok()
}

/// A small cache from the values of the dispatch fields to the logsources they select.
#[derive(Debug, Default)]
pub struct DispatchCache {
    map: HashMap<String, Vec<usize>>,
}

impl DispatchCache {
    /// The logsources of an event, computed once per distinct key.
    pub fn logsources<'a>(
        &'a mut self,
        mapping: &Mapping,
        fields: &[String],
        e: &Event,
    ) -> &'a [usize] {
        let mut key = String::new();
        for f in fields {
            if let Some(v) = e.first(f) {
                key.push_str(&v.to_ascii_lowercase());
            }
            key.push('\u{1}');
        }
        if self.map.len() > 4096 {
            self.map.clear();
        }
        self.map
            .entry(key)
            .or_insert_with(|| mapping.logsources_of(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_builtin_mapping_parses() {
        let m = Mapping::builtin();
        assert!(m.logsources.len() > 40);
        assert!(m.dispatch_fields().contains(&"Channel".to_owned()));
    }

    #[test]
    fn evtx_json_becomes_fields_with_aliases_and_splits() {
        let json = serde_json::json!({"Event": {
            "System": {"EventID": 4688, "Channel": "Security",
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
                "TimeCreated": {"#attributes": {"SystemTime": "2025-12-11T06:17:19.772545Z"}}},
            "EventData": {"NewProcessName": "C:\\w\\cmd.exe", "Hashes": "MD5=AA,SHA256=BB"}}});
        let m = Mapping::builtin();
        let e = m.event_from_evtx(
            json,
            Origin {
                file: Arc::from("f"),
                record: 1,
            },
        );
        assert_eq!(e.first("EventID"), Some("4688"));
        assert_eq!(e.first("Image"), Some("C:\\w\\cmd.exe"));
        assert_eq!(e.first("sha256"), Some("BB"));
        assert_eq!(
            e.first("Provider_Name"),
            Some("Microsoft-Windows-Security-Auditing")
        );
        assert!(e.time.is_some());
        let ls = m.logsources_of(&e);
        let names: Vec<_> = ls
            .iter()
            .map(|&i| {
                m.logsources[i]
                    .logsource
                    .category
                    .clone()
                    .or(m.logsources[i].logsource.service.clone())
            })
            .collect();
        assert!(
            names.contains(&Some("process_creation".into())),
            "{names:?}"
        );
        assert!(names.contains(&Some("security".into())), "{names:?}");
    }
}
