//! Communications as events: call-detail records and message metadata
//! become timed links between two selectors, rather than a cloud of
//! co-occurring numbers.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// One communication between two selectors.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommEvent {
    /// Who initiated it, as a `kind:value` term.
    pub from: String,
    /// Who received it, as a `kind:value` term.
    pub to: String,
    /// Start, Unix milliseconds (UTC).
    pub start_ms: i64,
    /// Duration in seconds (0 for messages).
    pub duration_s: u32,
    /// Where: a cell id or `lat,lon`, when the record says.
    pub place: Option<String>,
}

impl CommEvent {
    /// The compact form kept in the index: tab-separated fields.
    pub fn encode(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}",
            self.from,
            self.to,
            self.start_ms,
            self.duration_s,
            self.place.as_deref().unwrap_or("")
        )
    }

    /// Reads [`CommEvent::encode`]'s form back.
    pub fn decode(s: &str) -> Option<CommEvent> {
        let mut f = s.split('\t');
        let (from, to) = (f.next()?.to_owned(), f.next()?.to_owned());
        let start_ms = f.next()?.parse().ok()?;
        let duration_s = f.next()?.parse().ok()?;
        let place = f.next().filter(|p| !p.is_empty()).map(str::to_owned);
        Some(CommEvent {
            from,
            to,
            start_ms,
            duration_s,
            place,
        })
    }
}

/// Parses a timestamp as records carry it: RFC 3339, or `YYYY-MM-DD HH:MM[:SS]`
/// (taken as UTC), or Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let spaced = s.replacen('T', " ", 1);
    for fmt in [
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ] {
        if let Ok(t) = PrimitiveDateTime::parse(spaced.trim_end_matches('Z'), fmt) {
            return Some(t.assume_utc().unix_timestamp() * 1000);
        }
    }
    s.parse::<i64>()
        .ok()
        .filter(|n| (0..=32_503_680_000).contains(n))
        .map(|n| n * 1000)
}

/// Column positions of a call-detail or message-metadata header.
struct Columns {
    from: usize,
    to: usize,
    start: usize,
    duration: Option<usize>,
    cell: Option<usize>,
    lat: Option<usize>,
    lon: Option<usize>,
}

fn find(header: &[String], names: &[&str]) -> Option<usize> {
    header.iter().position(|h| names.contains(&h.as_str()))
}

fn columns(header: &csv::StringRecord) -> Option<Columns> {
    let h: Vec<String> = header
        .iter()
        .map(|c| c.trim().to_ascii_lowercase().replace([' ', '-'], "_"))
        .collect();
    Some(Columns {
        from: find(
            &h,
            &[
                "caller", "from", "a_number", "calling", "sender", "msisdn_a",
            ],
        )?,
        to: find(
            &h,
            &[
                "callee",
                "to",
                "b_number",
                "called",
                "recipient",
                "msisdn_b",
            ],
        )?,
        start: find(
            &h,
            &[
                "start",
                "start_time",
                "time",
                "timestamp",
                "datetime",
                "date",
            ],
        )?,
        duration: find(&h, &["duration", "duration_s", "seconds", "secs"]),
        cell: find(&h, &["cell", "cell_id", "cellid", "tower"]),
        lat: find(&h, &["lat", "latitude"]),
        lon: find(&h, &["lon", "lng", "long", "longitude"]),
    })
}

/// What a CSV file yields as communications.
#[derive(Debug, Default)]
pub struct CdrParse {
    /// Events read.
    pub events: Vec<CommEvent>,
    /// Rows that had the columns but not valid selectors or a time.
    pub rejected: usize,
}

/// Reads a CSV whose header names a caller, a callee and a start time as
/// communication events; `None` when the header is not of that shape.
pub fn parse_cdr(content: &[u8]) -> Option<CdrParse> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(content);
    let cols = columns(r.headers().ok()?)?;
    let mut out = CdrParse::default();
    for rec in r.records() {
        let Ok(rec) = rec else {
            out.rejected += 1;
            continue;
        };
        let get = |i: usize| rec.get(i).unwrap_or("").trim();
        let from = crate::entities::normalise(get(cols.from));
        let to = crate::entities::normalise(get(cols.to));
        let start = parse_time(get(cols.start));
        let (Some(from), Some(to), Some(start_ms)) = (from, to, start) else {
            out.rejected += 1;
            continue;
        };
        let duration_s = cols
            .duration
            .and_then(|i| get(i).parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d >= 0.0)
            .map_or(0, |d| d.min(f64::from(u32::MAX)) as u32);
        let lat_lon = match (cols.lat, cols.lon) {
            (Some(a), Some(b)) => {
                let (lat, lon) = (get(a).parse::<f64>(), get(b).parse::<f64>());
                match (lat, lon) {
                    (Ok(lat), Ok(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 => {
                        Some(format!("{lat:.5},{lon:.5}"))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let place = lat_lon.or_else(|| {
            cols.cell
                .map(get)
                .filter(|c| !c.is_empty())
                .map(|c| format!("cell:{c}"))
        });
        out.events.push(CommEvent {
            from,
            to,
            start_ms,
            duration_s,
            place,
        });
    }
    Some(out)
}

/// Most events kept per item.
pub const MAX_EVENTS: usize = 200_000;

/// The communications an item records: the rows of a call-detail CSV, or
/// the sender-to-recipient links of an e-mail at its `Date`.
pub fn events_of(kind: &str, content: &[u8]) -> Vec<CommEvent> {
    let mut out = match kind {
        "csv" => parse_cdr(content).map(|p| p.events).unwrap_or_default(),
        "email" => email_events(content),
        _ => Vec::new(),
    };
    out.truncate(MAX_EVENTS);
    out
}

fn email_events(content: &[u8]) -> Vec<CommEvent> {
    let Some(msg) = mail_parser::MessageParser::default().parse(content) else {
        return Vec::new();
    };
    let Some(start_ms) = msg.date().map(|d| d.to_timestamp() * 1000) else {
        return Vec::new();
    };
    let addrs = |a: Option<&mail_parser::Address>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .filter_map(crate::entities::normalise)
                .collect()
        })
        .unwrap_or_default()
    };
    let Some(from) = addrs(msg.from()).into_iter().next() else {
        return Vec::new();
    };
    let mut to = addrs(msg.to());
    to.extend(addrs(msg.cc()));
    to.into_iter()
        .filter(|t| *t != from)
        .map(|t| CommEvent {
            from: from.clone(),
            to: t,
            start_ms,
            duration_s: 0,
            place: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdr_rows_become_events() {
        let csv = "Caller,Callee,Start,Duration,Lat,Lon\n\
+44 7911 123456,+33 6 12 34 56 78,2026-03-01T10:00:00Z,240,51.5,-0.12\n\
+44 7911 123456,not a number,2026-03-01T10:05:00Z,10,,\n\
+33 6 12 34 56 78,viking@example.org,2026-03-02 09:30,0,,\n";
        let p = parse_cdr(csv.as_bytes()).unwrap();
        assert_eq!(p.rejected, 1, "{:?}", p.events);
        assert_eq!(p.events.len(), 2);
        let e = &p.events[0];
        assert_eq!(e.from, "phone:+447911123456");
        assert_eq!(e.to, "phone:+33612345678");
        assert_eq!(e.start_ms, 1_772_359_200_000);
        assert_eq!(e.duration_s, 240);
        assert_eq!(e.place.as_deref(), Some("51.50000,-0.12000"));
        assert_eq!(p.events[1].to, "email:viking@example.org");
        assert_eq!(CommEvent::decode(&e.encode()).as_ref(), Some(e));
        assert!(parse_cdr(b"name,age\nx,3\n").is_none());
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_time("1970-01-01 00:01"), Some(60_000));
        assert_eq!(
            parse_time("2026-03-01T11:00:00+01:00"),
            Some(1_772_359_200_000)
        );
        assert_eq!(parse_time("86400"), Some(86_400_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2026-13-01 00:00"), None);
    }
}
