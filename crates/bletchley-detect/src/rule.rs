//! Sigma rule files: YAML to typed rules (detections, correlations and filters), with
//! every error naming the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::Value as Yaml;

use crate::condition::{self, Condition};
use crate::pattern::{self, Modifiers, Placeholders, ScalarValue, Test};

/// A rule file that cannot be read as Sigma.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct RuleError {
    /// The file.
    pub file: PathBuf,
    /// The line (1-based) the trouble is on, or the rule's first line when it is the
    /// rule as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// How serious a rule says its detection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `informational`
    Informational,
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
}

impl Level {
    /// Reads a level name.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    /// The level's name as rules write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// Which logs a rule is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogSource {
    /// `product` (windows, linux, …).
    pub product: Option<String>,
    /// `category` (process_creation, …).
    pub category: Option<String>,
    /// `service` (security, sysmon, …).
    pub service: Option<String>,
}

impl std::fmt::Display for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            ("product", &self.product),
            ("category", &self.category),
            ("service", &self.service),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
        .collect();
        write!(f, "{{{}}}", parts.join(", "))
    }
}

/// A field's test: the values written for it, each compiled to its alternatives.
#[derive(Debug, Clone)]
pub struct FieldMatch {
    /// The field, or `None` for a keyword (any field).
    pub field: Option<String>,
    /// One entry per written value; each holds the tests any one of which matches it.
    pub values: Vec<Vec<Test>>,
    /// `all`: every written value must match.
    pub all: bool,
}

/// A search identifier: alternatives (a YAML list), each a conjunction (a YAML map).
#[derive(Debug, Clone)]
pub struct Search {
    /// Any one of these conjunctions matches the search.
    pub alternatives: Vec<Vec<FieldMatch>>,
}

/// A detection: named searches and the condition over them.
#[derive(Debug, Clone)]
pub struct Detection {
    /// The identifiers, in the order written.
    pub names: Vec<String>,
    /// The searches, by the same positions.
    pub searches: Vec<Search>,
    /// The condition (several written conditions are alternatives).
    pub condition: Condition,
}

/// The kinds of correlation the specification defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrelationKind {
    /// `event_count`: how many matching events.
    EventCount,
    /// `value_count`: how many distinct values of a field.
    ValueCount(String),
    /// `temporal`: every referenced rule matched.
    Temporal,
    /// `temporal_ordered`: every referenced rule matched, in the order listed.
    TemporalOrdered,
}

/// A correlation rule: a threshold over the detections of other rules.
#[derive(Debug, Clone)]
pub struct Correlation {
    /// What is counted.
    pub kind: CorrelationKind,
    /// The rules (by id or name) whose detections feed it.
    pub rules: Vec<String>,
    /// The fields that split the count into groups.
    pub group_by: Vec<String>,
    /// Group-by names that stand for a differently named field in each rule (`aliases`):
    /// alias -> (rule id or name -> field).
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
    /// The window the events must fall in.
    pub timespan: Duration,
    /// The threshold (for counts); temporal ones need every rule.
    pub threshold: Vec<(pattern::Compare, f64)>,
    /// Whether the referenced rules also report their own detections.
    pub generate: bool,
}

impl Correlation {
    /// The field group-by name `name` reads in the events of the rule with this `id` and
    /// `rule_name`: its alias there, else the name itself.
    pub fn field_for<'a>(&'a self, name: &'a str, id: &str, rule_name: Option<&str>) -> &'a str {
        self.aliases
            .get(name)
            .and_then(|per| per.get(id).or_else(|| rule_name.and_then(|n| per.get(n))))
            .map_or(name, String::as_str)
    }
}

/// A filter rule: a condition that must also hold for the rules it names.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The rules (by id or name) it narrows.
    pub rules: Vec<String>,
    /// The filter's own detection.
    pub detection: Detection,
}

/// What a rule does.
#[derive(Debug, Clone)]
pub enum Body {
    /// Matches single events.
    Detection(Detection),
    /// Counts other rules' detections.
    Correlation(Correlation),
    /// Narrows other rules.
    Filter(Filter),
}

/// One Sigma rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `id`
    pub id: String,
    /// `name`, which correlations and filters may use instead of the id.
    pub name: Option<String>,
    /// `title`
    pub title: String,
    /// `level`
    pub level: Level,
    /// `status`
    pub status: Option<String>,
    /// `tags` (ATT&CK techniques among them).
    pub tags: Vec<String>,
    /// `logsource`
    pub logsource: LogSource,
    /// `author`
    pub author: Option<String>,
    /// The fields the detection reads, for printing with a detection.
    pub fields: Vec<String>,
    /// What it does.
    pub body: Body,
    /// The file it came from.
    pub file: PathBuf,
    /// The line its document starts on.
    pub line: usize,
}

/// Reads every rule in a YAML file (a file may hold several documents).
pub fn parse_file(
    file: &Path,
    text: &str,
    placeholders: &dyn Placeholders,
) -> Result<Vec<Rule>, RuleError> {
    let mut rules = Vec::new();
    let starts = document_starts(text);
    // Sigma 1's rule collections: `action: global` is merged into every later document,
    // `action: reset` forgets it, `action: repeat` is the previous document with changes.
    let mut global: Option<Yaml> = None;
    let mut previous: Option<Yaml> = None;
    for (n, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let base = starts.get(n).copied().unwrap_or(1);
        let value = <Yaml as serde::Deserialize>::deserialize(doc).map_err(|e| RuleError {
            file: file.to_owned(),
            line: e.location().map_or(base, |l| l.line()),
            message: format!("not YAML: {e}"),
        })?;
        if value.is_null() {
            continue;
        }
        let action = value.get("action").and_then(scalar_text);
        let mut value = value;
        if let Some(m) = value.as_mapping_mut() {
            m.remove("action");
        }
        let value = match action.as_deref() {
            None => match &global {
                Some(g) => merged(g, &value),
                None => value,
            },
            Some("global") => {
                global = Some(value);
                continue;
            }
            Some("reset") => {
                global = None;
                continue;
            }
            Some("repeat") => match &previous {
                Some(p) => merged(p, &value),
                None => {
                    return Err(RuleError {
                        file: file.to_owned(),
                        line: base,
                        message: "action: repeat with no document before it to repeat".into(),
                    });
                }
            },
            Some(other) => {
                return Err(RuleError {
                    file: file.to_owned(),
                    line: base,
                    message: format!("unknown action {other:?} (global, reset or repeat)"),
                });
            }
        };
        let section = &text_lines(text)[base.saturating_sub(1)..];
        rules.push(parse_rule(file, base, section, &value, placeholders)?);
        previous = Some(value);
    }
    Ok(rules)
}

/// `over` laid on `base`: mappings merged key by key (recursively), anything else replaced.
fn merged(base: &Yaml, over: &Yaml) -> Yaml {
    match (base.as_mapping(), over.as_mapping()) {
        (Some(b), Some(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let v = match out.get(k) {
                    Some(old) => merged(old, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), v);
            }
            Yaml::Mapping(out)
        }
        _ => over.clone(),
    }
}

fn text_lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// The first line of each YAML document in the file.
fn document_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (i, l) in text.lines().enumerate() {
        if l.trim_end() == "---" && i > 0 {
            starts.push(i + 2);
        } else if l.trim_end() == "---" && i == 0 {
            starts[0] = 2;
        }
    }
    starts
}

fn parse_rule(
    file: &Path,
    base: usize,
    lines: &[&str],
    v: &Yaml,
    placeholders: &dyn Placeholders,
) -> Result<Rule, RuleError> {
    let err = |needle: &str, message: String| RuleError {
        file: file.to_owned(),
        line: line_of(lines, needle).map_or(base, |l| base + l),
        message,
    };
    let Some(map) = v.as_mapping() else {
        return Err(err("", "a rule is a YAML mapping".into()));
    };
    let s = |k: &str| map.get(k).and_then(scalar_text);
    let title = s("title").ok_or_else(|| err("", "the rule has no title".into()))?;
    let id = s("id").unwrap_or_else(|| title.clone());
    let level = match s("level") {
        Some(l) => Level::parse(&l).ok_or_else(|| err("level", format!("unknown level {l:?}")))?,
        None => Level::Medium,
    };
    let tags = map
        .get("tags")
        .and_then(Yaml::as_sequence)
        .map(|seq| seq.iter().filter_map(scalar_text).collect())
        .unwrap_or_default();
    let logsource = match map.get("logsource").and_then(Yaml::as_mapping) {
        Some(ls) => LogSource {
            product: ls.get("product").and_then(scalar_text),
            category: ls.get("category").and_then(scalar_text),
            service: ls.get("service").and_then(scalar_text),
        },
        None => LogSource::default(),
    };
    let fields = map
        .get("fields")
        .and_then(Yaml::as_sequence)
        .map(|seq| seq.iter().filter_map(scalar_text).collect())
        .unwrap_or_default();
    let body = if let Some(c) = map.get("correlation") {
        Body::Correlation(parse_correlation(c).map_err(|m| err("correlation", m))?)
    } else if let Some(f) = map.get("filter") {
        let fm = f
            .as_mapping()
            .ok_or_else(|| err("filter", "filter must be a mapping".into()))?;
        let rules = string_list(fm.get("rules"));
        if rules.is_empty() {
            return Err(err("filter", "a filter names the rules it narrows".into()));
        }
        let detection = parse_detection(f, placeholders).map_err(|(k, m)| err(&k, m))?;
        Body::Filter(Filter { rules, detection })
    } else if let Some(d) = map.get("detection") {
        Body::Detection(parse_detection(d, placeholders).map_err(|(k, m)| err(&k, m))?)
    } else {
        return Err(err(
            "",
            "the rule has no detection, correlation or filter".into(),
        ));
    };
    Ok(Rule {
        id,
        name: s("name"),
        title,
        level,
        status: s("status"),
        tags,
        logsource,
        author: s("author"),
        fields,
        body,
        file: file.to_owned(),
        line: base,
    })
}

/// The index (0-based, from the document's start) of the first line holding `needle`.
fn line_of(lines: &[&str], needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    lines.iter().position(|l| l.contains(needle))
}

fn scalar_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_list(v: Option<&Yaml>) -> Vec<String> {
    match v {
        Some(Yaml::Sequence(s)) => s.iter().filter_map(scalar_text).collect(),
        Some(other) => scalar_text(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Parses a `detection` mapping. Errors carry a word to find the line by.
fn parse_detection(
    d: &Yaml,
    placeholders: &dyn Placeholders,
) -> Result<Detection, (String, String)> {
    let map = d
        .as_mapping()
        .ok_or_else(|| ("detection".to_owned(), "detection must be a mapping".into()))?;
    let mut names = Vec::new();
    let mut searches = Vec::new();
    let mut conditions = Vec::new();
    for (k, v) in map {
        let Some(name) = scalar_text(k) else {
            return Err(("detection".into(), "a search name must be text".into()));
        };
        match name.as_str() {
            "condition" => conditions = string_list(Some(v)),
            "timeframe" => {}
            "rules" => {}
            _ => {
                let search = parse_search(v, placeholders).map_err(|(k, m)| {
                    let key = if k.is_empty() { name.clone() } else { k };
                    (key, format!("search {name:?}: {m}"))
                })?;
                names.push(name);
                searches.push(search);
            }
        }
    }
    if conditions.is_empty() {
        return Err(("detection".into(), "the detection has no condition".into()));
    }
    let mut parsed = Vec::new();
    for c in &conditions {
        parsed.push(
            condition::parse(c, &names).map_err(|e| ("condition".to_owned(), e.to_string()))?,
        );
    }
    let condition = if parsed.len() == 1 {
        parsed.remove(0)
    } else {
        Condition::Or(parsed)
    };
    Ok(Detection {
        names,
        searches,
        condition,
    })
}

fn parse_search(v: &Yaml, placeholders: &dyn Placeholders) -> Result<Search, (String, String)> {
    match v {
        Yaml::Mapping(_) => Ok(Search {
            alternatives: vec![parse_map(v, placeholders)?],
        }),
        Yaml::Sequence(items) if items.iter().all(|i| i.is_mapping()) && !items.is_empty() => {
            let mut alternatives = Vec::new();
            for i in items {
                alternatives.push(parse_map(i, placeholders)?);
            }
            Ok(Search { alternatives })
        }
        Yaml::Sequence(_) | Yaml::String(_) | Yaml::Number(_) => {
            // Keywords: values sought in any field.
            let m = Modifiers {
                anchor: Some(pattern::Anchor::Contains),
                ..Modifiers::default()
            };
            let fm = field_match(None, v, &m, placeholders).map_err(|m| (String::new(), m))?;
            Ok(Search {
                alternatives: vec![vec![fm]],
            })
        }
        _ => Err((
            String::new(),
            "a search is a mapping, a list of mappings or a list of keywords".into(),
        )),
    }
}

fn parse_map(
    v: &Yaml,
    placeholders: &dyn Placeholders,
) -> Result<Vec<FieldMatch>, (String, String)> {
    let Some(map) = v.as_mapping() else {
        return Err((String::new(), "expected a mapping".into()));
    };
    let mut out = Vec::new();
    for (k, val) in map {
        let Some(key) = scalar_text(k) else {
            return Err((String::new(), "a field name must be text".into()));
        };
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or_default().to_owned();
        let mods: Vec<&str> = parts.collect();
        let m = Modifiers::parse(&mods).map_err(|e| (key.clone(), format!("{key:?}: {e}")))?;
        let field = if field.is_empty() { None } else { Some(field) };
        out.push(
            field_match(field, val, &m, placeholders)
                .map_err(|e| (key.clone(), format!("{key:?}: {e}")))?,
        );
    }
    Ok(out)
}

fn field_match(
    field: Option<String>,
    v: &Yaml,
    m: &Modifiers,
    placeholders: &dyn Placeholders,
) -> Result<FieldMatch, String> {
    let written: Vec<ScalarValue> = match v {
        Yaml::Sequence(items) => {
            let mut out = Vec::new();
            for i in items {
                out.push(scalar_value(i)?);
            }
            out
        }
        other => vec![scalar_value(other)?],
    };
    let mut values = Vec::new();
    for w in &written {
        values.push(pattern::compile_value(w, m, placeholders).map_err(|e| e.to_string())?);
    }
    // An empty list matches nothing, which Sigma reads as "field absent"; keep it explicit.
    Ok(FieldMatch {
        field,
        values,
        all: m.all,
    })
}

fn scalar_value(v: &Yaml) -> Result<ScalarValue, String> {
    match v {
        Yaml::Null => Ok(ScalarValue::Null),
        other => scalar_text(other)
            .map(ScalarValue::Text)
            .ok_or_else(|| "a value must be text, a number, a boolean or null".to_owned()),
    }
}

fn parse_correlation(c: &Yaml) -> Result<Correlation, String> {
    let map = c.as_mapping().ok_or("correlation must be a mapping")?;
    let kind = map
        .get("type")
        .and_then(scalar_text)
        .ok_or("correlation has no type")?;
    let rules = string_list(map.get("rules"));
    if rules.is_empty() {
        return Err("a correlation names the rules it counts".into());
    }
    let group_by = string_list(map.get("group-by"));
    let mut aliases = BTreeMap::new();
    if let Some(a) = map.get("aliases") {
        let a = a
            .as_mapping()
            .ok_or("aliases maps each alias to its field in each rule")?;
        for (alias, per_rule) in a {
            let alias = scalar_text(alias).ok_or("an alias is a name")?;
            let per_rule = per_rule.as_mapping().ok_or_else(|| {
                format!("alias {alias:?} maps each rule (id or name) to a field name")
            })?;
            let mut fields = BTreeMap::new();
            for (rule, field) in per_rule {
                let (Some(rule), Some(field)) = (scalar_text(rule), scalar_text(field)) else {
                    return Err(format!("alias {alias:?}: a rule name and a field name"));
                };
                if !rules.contains(&rule) {
                    return Err(format!(
                        "alias {alias:?} names rule {rule:?}, which the correlation does not count"
                    ));
                }
                fields.insert(rule, field);
            }
            aliases.insert(alias, fields);
        }
    }
    let timespan = map
        .get("timespan")
        .or_else(|| map.get("timeframe"))
        .and_then(scalar_text)
        .ok_or("correlation has no timespan")?;
    let timespan = parse_timespan(&timespan)
        .ok_or(format!("timespan {timespan:?} is not like 5m, 1h or 30s"))?;
    let generate = map.get("generate").and_then(Yaml::as_bool).unwrap_or(false);
    let mut threshold = Vec::new();
    let mut field = None;
    if let Some(cond) = map.get("condition").and_then(Yaml::as_mapping) {
        for (k, v) in cond {
            let k = scalar_text(k).unwrap_or_default();
            let op = match k.as_str() {
                "gt" => pattern::Compare::Gt,
                "gte" => pattern::Compare::Gte,
                "lt" => pattern::Compare::Lt,
                "lte" => pattern::Compare::Lte,
                "eq" => {
                    let n = number(v)?;
                    threshold.push((pattern::Compare::Gte, n));
                    threshold.push((pattern::Compare::Lte, n));
                    continue;
                }
                "field" => {
                    field = scalar_text(v);
                    continue;
                }
                other => return Err(format!("unknown correlation condition {other:?}")),
            };
            threshold.push((op, number(v)?));
        }
    }
    let kind = match kind.as_str() {
        "event_count" => CorrelationKind::EventCount,
        "value_count" => {
            CorrelationKind::ValueCount(field.ok_or("value_count needs condition.field")?)
        }
        "temporal" => CorrelationKind::Temporal,
        "temporal_ordered" => CorrelationKind::TemporalOrdered,
        other => return Err(format!("unknown correlation type {other:?}")),
    };
    if threshold.is_empty()
        && matches!(
            kind,
            CorrelationKind::EventCount | CorrelationKind::ValueCount(_)
        )
    {
        return Err("a count correlation needs a condition such as gte: 10".into());
    }
    Ok(Correlation {
        kind,
        rules,
        group_by,
        aliases,
        timespan,
        threshold,
        generate,
    })
}

fn number(v: &Yaml) -> Result<f64, String> {
    scalar_text(v)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| "a correlation threshold is a number".to_owned())
}

/// Reads `30s`, `5m`, `1h`, `2d` (and `1M`, `1y` as thirty and 365 days).
pub fn parse_timespan(s: &str) -> Option<Duration> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].trim().parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        'w' => n.checked_mul(7 * 86_400)?,
        'M' => n.checked_mul(30 * 86_400)?,
        'y' => n.checked_mul(365 * 86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Placeholders from a mapping file, or none.
pub type PlaceholderMap = BTreeMap<String, Vec<String>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Rule>, RuleError> {
        parse_file(Path::new("r.yml"), text, &PlaceholderMap::new())
    }

    #[test]
    fn a_rule_parses() {
        let r = parse(
            "title: T\nid: abc\nlevel: high\ntags: [attack.t1059]\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n  condition: sel\n",
        )
        .expect("parses");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].level, Level::High);
        assert_eq!(r[0].logsource.category.as_deref(), Some("process_creation"));
        assert!(matches!(r[0].body, Body::Detection(_)));
    }

    #[test]
    fn errors_name_the_line() {
        let text = "title: T\nlogsource:\n  product: windows\ndetection:\n  sel:\n    Image|contians: x\n  condition: sel\n";
        let e = parse(text).expect_err("unknown modifier");
        assert_eq!(e.line, 6, "{e}");
        assert!(e.to_string().contains("contians"), "{e}");
        let e = parse("title: T\ndetection:\n  sel: {a: b\n").expect_err("broken YAML");
        assert!(e.to_string().starts_with("r.yml:"), "{e}");
        let e = parse("title: T\ndetection:\n  sel:\n    a: b\n  condition: sle\n")
            .expect_err("undefined");
        assert_eq!(e.line, 5, "{e}");
    }

    #[test]
    fn sigma_one_collections_merge_global_reset_and_repeat() {
        let text = "action: global\ntitle: Shared\nlevel: high\nlogsource:\n  product: windows\ndetection:\n  condition: sel\n---\nid: a\nlogsource:\n  service: security\ndetection:\n  sel:\n    EventID: 4625\n---\naction: repeat\nid: b\ndetection:\n  sel:\n    EventID: 4624\n---\naction: reset\n---\ntitle: Alone\nid: c\nlogsource:\n  product: linux\ndetection:\n  sel:\n    x: 1\n  condition: sel\n";
        let rules = parse_file(Path::new("c.yml"), text, &PlaceholderMap::new()).unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(rules[0].title, "Shared");
        assert_eq!(rules[0].level, Level::High);
        assert_eq!(rules[0].logsource.product.as_deref(), Some("windows"));
        assert_eq!(rules[0].logsource.service.as_deref(), Some("security"));
        assert_eq!(
            rules[1].logsource.service.as_deref(),
            Some("security"),
            "repeated"
        );
        assert_eq!(rules[2].level, Level::Medium, "the global part was reset");
        let e = parse_file(
            Path::new("c.yml"),
            "action: repeat\ntitle: x\n",
            &PlaceholderMap::new(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("nothing") || e.to_string().contains("no document"),
            "{e}"
        );
        let e = parse_file(
            Path::new("c.yml"),
            "action: merge\ntitle: x\n",
            &PlaceholderMap::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown action \"merge\""), "{e}");
    }

    #[test]
    fn correlations_parse() {
        let text = "title: many\ncorrelation:\n  type: value_count\n  rules: [a]\n  group-by: [User]\n  timespan: 5m\n  condition:\n    gte: 3\n    field: Computer\n";
        let r = parse(text).expect("parses");
        let Body::Correlation(c) = &r[0].body else {
            panic!("not a correlation")
        };
        assert_eq!(c.kind, CorrelationKind::ValueCount("Computer".into()));
        assert_eq!(c.timespan, Duration::from_secs(300));
        assert!(
            parse("title: x\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n")
                .is_err()
        );
    }

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_timespan("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_timespan("h"), None);
        assert_eq!(parse_timespan("5x"), None);
    }
}
