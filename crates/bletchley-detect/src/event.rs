//! One log record, as the rules see it: named fields holding one or more values.
//!
//! Every reader (EVTX, JSON Lines, syslog) turns its records into this shape, so the
//! engine never knows where an event came from. Values are kept as text with their
//! lowercase form beside them, computed once per event, because Sigma matches are
//! case-insensitive by default and a rule set asks the same field thousands of times.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

/// One value of a field.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// The value as written (numbers in decimal).
    pub text: String,
    /// `text` lowercased, for case-insensitive matching.
    pub lower: String,
    /// The number, where the value was one (or is text that reads as one).
    pub number: Option<f64>,
    /// Whether the source held an explicit null here.
    pub null: bool,
}

impl Value {
    /// A text value.
    pub fn text(text: impl Into<String>) -> Value {
        let text = text.into();
        let number = parse_number(&text);
        Value {
            lower: text.to_lowercase(),
            text,
            number,
            null: false,
        }
    }

    /// A numeric value, written as the source wrote it.
    pub fn number(n: f64, text: String) -> Value {
        Value {
            lower: text.clone(),
            text,
            number: Some(n),
            null: false,
        }
    }

    /// An explicit null.
    pub fn null() -> Value {
        Value {
            text: String::new(),
            lower: String::new(),
            number: None,
            null: true,
        }
    }
}

/// Reads text as a number the way a comparison modifier means it: decimal integers and
/// floats, and `0x` hexadecimal (Windows writes flags and access masks that way).
fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() || t.len() > 40 {
        return None;
    }
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
    }
    if t.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        t.parse::<f64>().ok().filter(|n| n.is_finite())
    } else {
        None
    }
}

/// Where an event came from, for the analyst who follows a detection back.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// The file (or item) name the record was read from.
    pub file: Arc<str>,
    /// The record's number in that file: EVTX's record id, or the line number.
    pub record: u64,
}

/// One log record as named fields.
#[derive(Debug, Clone)]
pub struct Event {
    names: Vec<String>,
    lower: Vec<String>,
    values: Vec<Vec<Value>>,
    /// Lowercased name to position, for lookups that ignore case.
    by_lower: HashMap<String, usize>,
    /// When the record says it happened.
    pub time: Option<OffsetDateTime>,
    /// Where it came from.
    pub origin: Origin,
    /// The record as the reader rendered it (EVTX's JSON, the JSON line, the syslog
    /// fields), printed with detections.
    pub raw: serde_json::Value,
}

impl Event {
    /// An event with no fields yet.
    pub fn new(origin: Origin, raw: serde_json::Value) -> Event {
        Event {
            names: Vec::new(),
            lower: Vec::new(),
            values: Vec::new(),
            by_lower: HashMap::new(),
            time: None,
            origin,
            raw,
        }
    }

    /// Adds a value to a field (a field may hold several, as a list in JSON does).
    pub fn push(&mut self, name: &str, value: Value) {
        let lower = name.to_lowercase();
        if let Some(&i) = self.by_lower.get(&lower) {
            self.values[i].push(value);
            return;
        }
        self.by_lower.insert(lower.clone(), self.names.len());
        self.lower.push(lower);
        self.names.push(name.to_owned());
        self.values.push(vec![value]);
    }

    /// Adds a field under a second name (a mapping's alias) unless that name is taken.
    pub fn alias(&mut self, alias: &str, from: &str) {
        if self.by_lower.contains_key(&alias.to_lowercase()) {
            return;
        }
        if let Some(values) = self.get(from).map(<[Value]>::to_vec) {
            for v in values {
                self.push(alias, v);
            }
        }
    }

    /// The values of a field, looked up by name; Sigma field names are matched without
    /// regard to case, as Windows writes `CommandLine` and `Commandline` both.
    pub fn get(&self, name: &str) -> Option<&[Value]> {
        let i = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => *self.by_lower.get(&name.to_lowercase())?,
        };
        Some(&self.values[i])
    }

    /// The first value's text, if the field exists.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.get(name)?.first().map(|v| v.text.as_str())
    }

    /// Every field, in the order they were added.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &[Value])> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.values.iter().map(Vec::as_slice))
    }

    /// Every field by its lowercased name, for lookups in tables keyed that way.
    pub fn fields_lower(&self) -> impl Iterator<Item = (&str, &[Value])> {
        self.lower
            .iter()
            .map(String::as_str)
            .zip(self.values.iter().map(Vec::as_slice))
    }

    /// The values of the field at a position in [`Event::fields_lower`]'s order.
    pub fn values_at(&self, i: usize) -> &[Value] {
        &self.values[i]
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the event has no fields.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Flattens a JSON value into fields: objects by key (and by dotted path below the
    /// top), lists as several values of one field.
    pub fn push_json(&mut self, prefix: &str, value: &serde_json::Value, depth: usize) {
        use serde_json::Value as J;
        if depth > 16 {
            return;
        }
        match value {
            J::Object(map) => {
                for (k, v) in map {
                    if k == "#attributes" {
                        if let J::Object(attrs) = v {
                            for (ak, av) in attrs {
                                let name = join(prefix, ak);
                                self.push_json(&name, av, depth + 1);
                            }
                        }
                        continue;
                    }
                    if k == "#text" {
                        self.push_json(prefix, v, depth + 1);
                        continue;
                    }
                    let name = join(prefix, k);
                    self.push_json(&name, v, depth + 1);
                }
            }
            J::Array(items) => {
                for item in items {
                    self.push_json(prefix, item, depth + 1);
                }
            }
            J::Null => self.push(prefix, Value::null()),
            J::Bool(b) => self.push(prefix, Value::text(b.to_string())),
            J::Number(n) => {
                let text = n.to_string();
                match n.as_f64() {
                    Some(f) => self.push(prefix, Value::number(f, text)),
                    None => self.push(prefix, Value::text(text)),
                }
            }
            J::String(s) => self.push(prefix, Value::text(s.clone())),
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            file: Arc::from("t"),
            record: 1,
        }
    }

    #[test]
    fn numbers_read_in_decimal_and_hex() {
        assert_eq!(parse_number("4688"), Some(4688.0));
        assert_eq!(parse_number("0x1F"), Some(31.0));
        assert_eq!(parse_number("-2.5"), Some(-2.5));
        assert_eq!(parse_number("cmd.exe"), None);
        assert_eq!(parse_number(""), None);
    }

    #[test]
    fn fields_are_found_whatever_their_case() {
        let mut e = Event::new(origin(), serde_json::Value::Null);
        e.push("Commandline", Value::text("whoami /all"));
        assert_eq!(e.first("CommandLine"), Some("whoami /all"));
        e.alias("Image", "NewProcessName");
        assert!(e.get("Image").is_none());
    }

    #[test]
    fn json_lists_are_several_values_of_one_field() {
        let mut e = Event::new(origin(), serde_json::Value::Null);
        let j = serde_json::json!({"Data": ["a", "b"], "n": {"#attributes": {"Name": "x"}}});
        e.push_json("", &j, 0);
        assert_eq!(e.get("Data").map(<[Value]>::len), Some(2));
        assert_eq!(e.first("n.Name"), Some("x"));
    }
}
