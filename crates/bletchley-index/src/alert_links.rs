//! Alerts in the link graph and on the timeline.
//!
//! An alert item (JSON with `"kind": "detection"` or `"correlation"`, as the detection job
//! stores it) names under `selectors` the hosts, accounts, addresses, hashes, domains and
//! command lines of the event that fired, and under `time` (or `first`) when it happened. No
//! pattern finds a host or an account in running text, so the job names them and the index
//! takes them here, each checked by [`crate::entities::normalise`] like a typed selector.
//! An item anyone stores with the same shape links only what it names itself, as its text
//! would.

use serde_json::Value;

/// The largest alert read for its links, in bytes (alerts are a few kilobytes).
const MAX_ALERT_BYTES: usize = 1 << 20;

/// The most selectors one alert adds.
const MAX_SELECTORS: usize = 256;

/// What an alert links: its selectors, and when its event happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AlertLinks {
    /// `kind:value` terms, normalised.
    pub selectors: Vec<String>,
    /// When the event happened (Unix ms), if the alert says.
    pub happened_ms: Option<i64>,
}

/// The links of an alert item; `None` for any other item.
pub(crate) fn alert_links(title: &str, content: &[u8]) -> Option<AlertLinks> {
    if !title.to_ascii_lowercase().ends_with(".json") || content.len() > MAX_ALERT_BYTES {
        return None;
    }
    let v: Value = serde_json::from_slice(content).ok()?;
    if !matches!(v["kind"].as_str(), Some("detection" | "correlation")) {
        return None;
    }
    let mut selectors: Vec<String> = v["selectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(crate::entities::normalise)
        .take(MAX_SELECTORS)
        .collect();
    selectors.sort();
    selectors.dedup();
    let happened_ms = v["time"]
        .as_str()
        .or_else(|| v["first"].as_str())
        .and_then(crate::comms::parse_time);
    Some(AlertLinks {
        selectors,
        happened_ms,
    })
}

/// How the time an item's event happened is kept beside its communications in the index's
/// `event` field (which [`crate::comms::CommEvent::decode`] does not read as one).
pub(crate) fn encode_happened(ms: i64) -> String {
    format!("@{ms}")
}

/// Reads [`encode_happened`]'s form back.
pub(crate) fn decode_happened(s: &str) -> Option<i64> {
    s.strip_prefix('@')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_links_its_checked_selectors_and_its_time() {
        let body = serde_json::json!({
            "kind": "detection",
            "time": "2026-11-02T10:00:00Z",
            "selectors": ["host:WS-01", "user:CORP\\Alice", "hash:ABCDEF0123456789abcdef0123456789",
                          "ipv4:10.1.2.3", "cmdline:cmd.exe  /c   whoami", "hash:xyz", "nonsense"],
        });
        let l = alert_links("log.evtx alert high X.json", body.to_string().as_bytes()).unwrap();
        assert_eq!(
            l.selectors,
            [
                "cmdline:cmd.exe /c whoami",
                "hash:abcdef0123456789abcdef0123456789",
                "host:ws-01",
                "ipv4:10.1.2.3",
                "user:corp\\alice",
            ]
        );
        assert_eq!(l.happened_ms, Some(1_793_613_600_000));
        assert_eq!(decode_happened(&encode_happened(-5)), Some(-5));
    }

    #[test]
    fn other_items_are_not_alerts() {
        assert_eq!(
            alert_links("a.json", br#"{"kind":"case","selectors":["host:x"]}"#),
            None
        );
        assert_eq!(alert_links("a.txt", br#"{"kind":"detection"}"#), None);
        assert_eq!(alert_links("a.json", b"not json"), None);
    }
}
