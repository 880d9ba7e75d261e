//! Indicators of compromise out of alerts, for containment: every hash, address, domain,
//! host, account and command line the alerts' events name, as a CSV for people and block
//! lists, and the hashes, addresses and domains as a STIX 2.1 bundle for other tools.
//!
//! Fields are found by name anywhere in an event (EVTX `EventData`, Winlogbeat/ECS, plain
//! JSON), values checked for what they claim to be (an address parses as one, a hash is hex
//! of its length): a log's free text never becomes an indicator by accident.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value, json};

/// What an indicator is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// MD5 of a file.
    Md5,
    /// SHA-1 of a file.
    Sha1,
    /// SHA-256 of a file.
    Sha256,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A domain name.
    Domain,
    /// A host (computer name).
    Host,
    /// An account.
    User,
    /// A command line.
    CommandLine,
}

impl Kind {
    /// The name in the CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
            Kind::Ip => "ip",
            Kind::Domain => "domain",
            Kind::Host => "host",
            Kind::User => "user",
            Kind::CommandLine => "command-line",
        }
    }

    /// Whether a block list (of hosts, addresses and hashes) takes it.
    pub fn blockable(self) -> bool {
        matches!(
            self,
            Kind::Md5 | Kind::Sha1 | Kind::Sha256 | Kind::Ip | Kind::Host | Kind::Domain
        )
    }
}

/// One indicator and the alerts that name it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Indicator {
    /// What it is.
    pub kind: Kind,
    /// Its value (hashes in lower case).
    pub value: String,
    /// The alert items whose events name it.
    pub alerts: Vec<String>,
    /// The earliest event time naming it, as the log says.
    pub first_seen: Option<String>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_domain(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    s.len() <= 253
        && s.contains('.')
        && s.parse::<IpAddr>().is_err()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && s.rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// Values that name nothing.
fn empty(s: &str) -> bool {
    matches!(s.trim(), "" | "-" | "N/A" | "null" | "(null)")
}

/// The indicators one field gives.
fn from_field(key: &str, value: &str, out: &mut Vec<(Kind, String)>) {
    let v = value.trim();
    if empty(v) {
        return;
    }
    let k = key.to_ascii_lowercase();
    let k = k.rsplit('.').next().unwrap_or(&k);
    match k {
        "hashes" | "hash" => {
            for part in v.split(',') {
                let (alg, h) = match part.split_once('=') {
                    Some((a, h)) => (a.trim().to_ascii_lowercase(), h.trim()),
                    None => (String::new(), part.trim()),
                };
                let h = h.to_ascii_lowercase();
                match (alg.as_str(), h.len()) {
                    ("md5" | "", 32) if is_hex(&h, 32) => out.push((Kind::Md5, h)),
                    ("sha1" | "", 40) if is_hex(&h, 40) => out.push((Kind::Sha1, h)),
                    ("sha256" | "", 64) if is_hex(&h, 64) => out.push((Kind::Sha256, h)),
                    _ => {}
                }
            }
        }
        "md5" if is_hex(v, 32) => out.push((Kind::Md5, v.to_ascii_lowercase())),
        "sha1" if is_hex(v, 40) => out.push((Kind::Sha1, v.to_ascii_lowercase())),
        "sha256" if is_hex(v, 64) => out.push((Kind::Sha256, v.to_ascii_lowercase())),
        "ipaddress" | "sourceip" | "destinationip" | "sourceaddress" | "destaddress"
        | "clientaddress" | "ip" | "src_ip" | "dst_ip" => {
            let bare = v.trim_start_matches("::ffff:");
            if let Ok(ip) = bare.parse::<IpAddr>()
                && !ip.is_loopback()
                && !ip.is_unspecified()
            {
                out.push((Kind::Ip, ip.to_string()));
            }
        }
        "queryname" | "destinationhostname" | "domain" | "registered_domain" if is_domain(v) => {
            out.push((Kind::Domain, v.trim_end_matches('.').to_ascii_lowercase()));
        }
        "computer" | "workstationname" | "hostname" => out.push((Kind::Host, v.to_owned())),
        "user" | "targetusername" | "subjectusername" => out.push((Kind::User, v.to_owned())),
        "commandline" | "parentcommandline" => out.push((Kind::CommandLine, v.to_owned())),
        _ => {}
    }
}

fn walk(key: &str, v: &Value, out: &mut Vec<(Kind, String)>) {
    match v {
        Value::Object(m) => {
            // EVTX renders `<Data Name="X">v</Data>` as "X": v, and a few as
            // {"#attributes": {"Name": "X"}, "#text": v}.
            if let (Some(Value::String(name)), Some(Value::String(text))) = (
                m.get("#attributes").and_then(|a| a.get("Name")),
                m.get("#text"),
            ) {
                from_field(name, text, out);
            }
            for (k, child) in m {
                walk(k, child, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                walk(key, child, out);
            }
        }
        Value::String(s) => from_field(key, s, out),
        _ => {}
    }
}

impl Indicator {
    /// The indicator as a selector of the link graph (`host:ws-01`, `hash:…`, `ipv4:…`), in
    /// the form the index checks and keeps.
    pub fn term(&self) -> String {
        let kind = match self.kind {
            Kind::Md5 | Kind::Sha1 | Kind::Sha256 => "hash",
            Kind::Ip if self.value.contains(':') => "ipv6",
            Kind::Ip => "ipv4",
            Kind::Domain => "domain",
            Kind::Host => "host",
            Kind::User => "user",
            Kind::CommandLine => "cmdline",
        };
        format!("{kind}:{}", self.value)
    }
}

/// The selectors one alert body names, as [`Indicator::term`]s: what the detection job
/// stores beside each alert so the index links it to the rest of the platform.
pub fn selectors(body: &Value) -> Vec<String> {
    indicators(&[(String::new(), body.clone())])
        .iter()
        .map(Indicator::term)
        .collect()
}

/// The indicators of `alerts`, each (alert id, alert body) as stored, in a stable order
/// (kind, then value).
pub fn indicators(alerts: &[(String, Value)]) -> Vec<Indicator> {
    let mut found: BTreeMap<(Kind, String), Indicator> = BTreeMap::new();
    for (id, body) in alerts {
        let mut here = Vec::new();
        walk("", &body["event"], &mut here);
        if let Some(c) = body["computer"].as_str() {
            from_field("computer", c, &mut here);
        }
        let time = body["time"].as_str().map(str::to_owned);
        for (kind, value) in here {
            let e = found
                .entry((kind, value.clone()))
                .or_insert_with(|| Indicator {
                    kind,
                    value,
                    alerts: Vec::new(),
                    first_seen: None,
                });
            if !e.alerts.contains(id) {
                e.alerts.push(id.clone());
            }
            if let Some(t) = &time
                && e.first_seen.as_ref().is_none_or(|f| t < f)
            {
                e.first_seen = Some(t.clone());
            }
        }
    }
    found.into_values().collect()
}

fn csv_field(s: &str) -> String {
    // A leading =, +, - or @ would be a formula to a spreadsheet.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The indicators as CSV: `type,value,first_seen,alerts`.
pub fn csv(iocs: &[Indicator]) -> String {
    let mut out = String::from("type,value,first_seen,alerts\n");
    for i in iocs {
        out.push_str(&format!(
            "{},{},{},{}\n",
            i.kind.as_str(),
            csv_field(&i.value),
            csv_field(i.first_seen.as_deref().unwrap_or("")),
            i.alerts.len()
        ));
    }
    out
}

/// The block list: one hash, address, domain or host a line, `type<TAB>value`.
pub fn block_list(iocs: &[Indicator]) -> String {
    iocs.iter()
        .filter(|i| i.kind.blockable())
        .map(|i| format!("{}\t{}\n", i.kind.as_str(), i.value))
        .collect()
}

fn stix_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Identifiers that are the same for the same content (UUID version 5 under a namespace of
/// our own), so that a bundle made twice names its objects alike and importers merge them.
fn stix_id(kind: &str, name: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6b1e_5c1e_7e1c_4b1e_9c1e_b1e7_c41e_7000);
    format!(
        "{kind}--{}",
        uuid::Uuid::new_v5(&NAMESPACE, format!("{kind}:{name}").as_bytes())
    )
}

/// The hashes, addresses and domains as a STIX 2.1 bundle of indicators, `created` as given
/// (RFC 3339).
pub fn stix_bundle(iocs: &[Indicator], name: &str, created: &str) -> Value {
    let mut objects = Vec::new();
    for i in iocs {
        let pattern = match i.kind {
            Kind::Md5 => format!("[file:hashes.MD5 = '{}']", i.value),
            Kind::Sha1 => format!("[file:hashes.'SHA-1' = '{}']", i.value),
            Kind::Sha256 => format!("[file:hashes.'SHA-256' = '{}']", i.value),
            Kind::Ip => {
                let t = if i.value.contains(':') {
                    "ipv6-addr"
                } else {
                    "ipv4-addr"
                };
                format!("[{t}:value = '{}']", i.value)
            }
            Kind::Domain => format!("[domain-name:value = '{}']", stix_string(&i.value)),
            Kind::Host | Kind::User | Kind::CommandLine => continue,
        };
        objects.push(json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": stix_id("indicator", &pattern),
            "created": created,
            "modified": created,
            "name": format!("{} {}", i.kind.as_str(), i.value),
            "description": format!("named by {} alert(s) of {name}", i.alerts.len()),
            "indicator_types": ["malicious-activity"],
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": i.first_seen.as_deref().unwrap_or(created),
        }));
    }
    json!({
        "type": "bundle",
        "id": stix_id("bundle", &format!("{name}:{created}")),
        "objects": objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, event: Value) -> (String, Value) {
        (
            id.to_owned(),
            json!({ "time": "2024-01-02T03:04:05Z", "computer": "WS01.corp.example", "event": event }),
        )
    }

    #[test]
    fn fields_are_found_by_name_and_checked_for_what_they_claim() {
        let a = alert(
            "a1",
            json!({ "Event": { "EventData": {
                "Hashes": "SHA1=EE8CBF12D87C4D388F09B4F69BED2E91682920B5,MD5=AD7B9C14083B52BC532FBA5948342B98,SHA256=17F746D82695FA9B35493B41859D39D786D32B23A9D2E00F4011DEC7A02402AE,IMPHASH=CEEFB55F764020CC5C5F8F23349AB163",
                "DestinationIp": "203.0.113.9",
                "SourceIp": "127.0.0.1",
                "QueryName": "evil.example.net.",
                "User": "CORP\\\\alice",
                "TargetUserName": "-",
                "CommandLine": "=cmd /c whoami",
                "Image": "C:\\\\x.exe 10.0.0.1",
            } } }),
        );
        let iocs = indicators(&[a]);
        let kinds: Vec<(&str, &str)> = iocs
            .iter()
            .map(|i| (i.kind.as_str(), i.value.as_str()))
            .collect();
        assert!(kinds.contains(&("md5", "ad7b9c14083b52bc532fba5948342b98")));
        assert!(kinds.contains(&("sha1", "ee8cbf12d87c4d388f09b4f69bed2e91682920b5")));
        assert!(kinds.contains(&(
            "sha256",
            "17f746d82695fa9b35493b41859d39d786d32b23a9d2e00f4011dec7a02402ae"
        )));
        assert!(kinds.contains(&("ip", "203.0.113.9")));
        assert!(kinds.contains(&("domain", "evil.example.net")));
        assert!(kinds.contains(&("host", "WS01.corp.example")));
        // Loopback, "-", the imphash, and an address inside free text are not indicators.
        assert!(
            !kinds
                .iter()
                .any(|(_, v)| *v == "127.0.0.1" || *v == "-" || *v == "10.0.0.1")
        );
        assert!(!kinds.iter().any(|(_, v)| v.starts_with("ceefb55f")));
        let csv = csv(&iocs);
        assert!(
            csv.contains("command-line,'=cmd /c whoami,2024-01-02T03:04:05Z,1"),
            "{csv}"
        );
        let block = block_list(&iocs);
        assert!(block.contains("ip\t203.0.113.9\n") && !block.contains("user\t"));
    }

    #[test]
    fn the_bundle_is_stix_2_1_and_the_same_each_time() {
        let a = alert(
            "a1",
            json!({ "Hashes": "MD5=AD7B9C14083B52BC532FBA5948342B98", "DestinationIp": "2001:db8::1" }),
        );
        let b = alert(
            "a2",
            json!({ "Hashes": "MD5=ad7b9c14083b52bc532fba5948342b98" }),
        );
        let iocs = indicators(&[a, b]);
        let md5 = iocs.iter().find(|i| i.kind == Kind::Md5).expect("md5");
        assert_eq!(md5.alerts, vec!["a1".to_owned(), "a2".to_owned()]);
        let one = stix_bundle(&iocs, "case 1", "2024-05-06T07:08:09Z");
        let two = stix_bundle(&iocs, "case 1", "2024-05-06T07:08:09Z");
        assert_eq!(one, two);
        assert_eq!(one["type"], "bundle");
        let objects = one["objects"].as_array().expect("objects");
        assert_eq!(objects.len(), 2, "the host is not a STIX pattern");
        for o in objects {
            assert_eq!(o["spec_version"], "2.1");
            assert_eq!(o["pattern_type"], "stix");
            assert!(o["id"].as_str().expect("id").starts_with("indicator--"));
        }
        let patterns: Vec<&str> = objects
            .iter()
            .filter_map(|o| o["pattern"].as_str())
            .collect();
        assert!(patterns.contains(&"[file:hashes.MD5 = 'ad7b9c14083b52bc532fba5948342b98']"));
        assert!(patterns.contains(&"[ipv6-addr:value = '2001:db8::1']"));
    }
}
