//! Syslog files: RFC 5424 lines, RFC 3164 lines (with or without the priority, as
//! rsyslog writes them to disk), and RFC 3164 with an RFC 3339 time (rsyslog's
//! high-precision format).

use std::path::Path;
use std::sync::Arc;

use time::{Month, OffsetDateTime, PrimitiveDateTime};

use super::{MAX_LINE, ReadError, ReadStats, for_each_line, open_lines};
use crate::event::{Event, Origin, Value};
use crate::mapping::{Mapping, parse_time};

/// One parsed syslog line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Line {
    /// Facility (from the priority), where written.
    pub facility: Option<u8>,
    /// Severity (from the priority), where written.
    pub severity: Option<u8>,
    /// The time.
    pub time: Option<OffsetDateTime>,
    /// HOSTNAME
    pub host: Option<String>,
    /// APP-NAME or the 3164 tag.
    pub app: Option<String>,
    /// PROCID or the tag's `[pid]`.
    pub pid: Option<String>,
    /// MSGID (5424).
    pub msgid: Option<String>,
    /// Structured-data parameters, by name.
    pub params: Vec<(String, String)>,
    /// The message.
    pub message: String,
}

/// Parses one line; `year` is used for RFC 3164 times, which have none.
pub fn parse_line(line: &str, year: i32) -> Option<Line> {
    let mut out = Line::default();
    let mut rest = line;
    if let Some(r) = rest.strip_prefix('<') {
        let end = r.find('>')?;
        let pri: u16 = r[..end].parse().ok().filter(|p| *p <= 191)?;
        out.facility = Some((pri / 8) as u8);
        out.severity = Some((pri % 8) as u8);
        rest = &r[end + 1..];
        if let Some(r5424) = rest.strip_prefix("1 ") {
            return parse_5424(r5424, out);
        }
    }
    // RFC 3339 time first (rsyslog high precision), else "Mmm dd hh:mm:ss".
    let (time, after) = if rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let (t, a) = rest.split_once(' ')?;
        (parse_time(t)?, a)
    } else {
        if rest.len() < 16 {
            return None;
        }
        let (t, a) = rest.split_at_checked(15)?;
        (parse_3164_time(t, year)?, a.strip_prefix(' ')?)
    };
    out.time = Some(time);
    let (host, after) = after.split_once(' ')?;
    out.host = Some(host.to_owned());
    // TAG[pid]: message
    match after.split_once(": ") {
        Some((tag, msg)) if !tag.contains(' ') => {
            match tag.split_once('[') {
                Some((app, pid)) => {
                    out.app = Some(app.to_owned());
                    out.pid = Some(pid.trim_end_matches(']').to_owned());
                }
                None => out.app = Some(tag.to_owned()),
            }
            out.message = msg.to_owned();
        }
        _ => out.message = after.to_owned(),
    }
    Some(out)
}

fn parse_5424(rest: &str, mut out: Line) -> Option<Line> {
    let mut parts = rest.splitn(6, ' ');
    let nil = |s: &str| (s != "-").then(|| s.to_owned());
    let time = parts.next()?;
    out.time = if time == "-" {
        None
    } else {
        Some(parse_time(time)?)
    };
    out.host = nil(parts.next()?);
    out.app = nil(parts.next()?);
    out.pid = nil(parts.next()?);
    out.msgid = nil(parts.next()?);
    let rest = parts.next().unwrap_or("");
    let msg = if let Some(r) = rest.strip_prefix('-') {
        r
    } else if rest.starts_with('[') {
        parse_sd(rest, &mut out.params)?
    } else {
        return None;
    };
    let msg = msg.strip_prefix(' ').unwrap_or(msg);
    out.message = msg.strip_prefix('\u{feff}').unwrap_or(msg).to_owned();
    Some(out)
}

/// Parses `[id k="v" ...][...]`, returning what follows.
fn parse_sd<'a>(mut s: &'a str, params: &mut Vec<(String, String)>) -> Option<&'a str> {
    while let Some(r) = s.strip_prefix('[') {
        let mut chars = r.char_indices().peekable();
        // SD-ID
        let id_end = r.find([' ', ']'])?;
        let _id = &r[..id_end];
        let mut i = id_end;
        for _ in 0..id_end {
            chars.next();
        }
        loop {
            let rest = &r[i..];
            if let Some(after) = rest.strip_prefix(']') {
                s = after;
                break;
            }
            let rest = rest.strip_prefix(' ')?;
            let eq = rest.find('=')?;
            let name = &rest[..eq];
            let v = rest[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut end = None;
            let mut esc = false;
            for (k, c) in v.char_indices() {
                if esc {
                    value.push(c);
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    end = Some(k);
                    break;
                } else {
                    value.push(c);
                }
            }
            let end = end?;
            params.push((name.to_owned(), value));
            i = r.len() - (v.len() - end - 1);
        }
    }
    Some(s)
}

fn parse_3164_time(t: &str, year: i32) -> Option<OffsetDateTime> {
    let month = match t.get(..3)? {
        "Jan" => Month::January,
        "Feb" => Month::February,
        "Mar" => Month::March,
        "Apr" => Month::April,
        "May" => Month::May,
        "Jun" => Month::June,
        "Jul" => Month::July,
        "Aug" => Month::August,
        "Sep" => Month::September,
        "Oct" => Month::October,
        "Nov" => Month::November,
        "Dec" => Month::December,
        _ => return None,
    };
    let day: u8 = t.get(4..6)?.trim().parse().ok()?;
    let hms: Vec<u8> = t
        .get(7..15)?
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else { return None };
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let tod = time::Time::from_hms(h, m, s).ok()?;
    Some(PrimitiveDateTime::new(date, tod).assume_utc())
}

/// Reads a syslog file. Lines that do not parse are skipped and counted; invalid UTF-8
/// is replaced and counted; a file none of whose lines parse is refused.
pub fn read(
    path: &Path,
    name: Arc<str>,
    mapping: &Mapping,
    on_event: &mut dyn FnMut(Event),
) -> Result<ReadStats, ReadError> {
    read_from(open_lines(path)?, path, name, mapping, on_event)
}

/// As [`read`], from any reader (`path` names it in errors).
pub fn read_from(
    reader: impl std::io::BufRead,
    path: &Path,
    name: Arc<str>,
    _mapping: &Mapping,
    on_event: &mut dyn FnMut(Event),
) -> Result<ReadStats, ReadError> {
    let now = OffsetDateTime::now_utc();
    let mut stats = ReadStats::default();
    for_each_line(reader, path, |n, line| {
        let bytes = match line {
            Ok(l) => l,
            Err(len) => {
                stats.skip(n, format!("line of {len} bytes is longer than {MAX_LINE}"));
                return;
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let text = String::from_utf8_lossy(bytes);
        if matches!(text, std::borrow::Cow::Owned(_)) {
            stats.repaired += 1;
        }
        let mut parsed = parse_line(&text, now.year());
        // A 3164 time later than tomorrow was last year's.
        if let Some(p) = &mut parsed
            && let Some(t) = p.time
            && t - now > time::Duration::days(1)
        {
            p.time = t.replace_year(t.year() - 1).ok();
        }
        match parsed {
            Some(p) => {
                stats.records += 1;
                on_event(to_event(
                    p,
                    Origin {
                        file: name.clone(),
                        record: n,
                    },
                ));
            }
            None => stats.skip(n, "not a syslog line (RFC 3164 or 5424)".into()),
        }
    })?;
    if stats.records == 0 && stats.skipped > 0 {
        return Err(ReadError::Malformed {
            path: path.to_owned(),
            format: "syslog",
            why: "no line is an RFC 3164 or RFC 5424 record".into(),
        });
    }
    Ok(stats)
}

fn to_event(p: Line, origin: Origin) -> Event {
    let mut raw = serde_json::Map::new();
    let mut e = Event::new(origin, serde_json::Value::Null);
    let mut put = |e: &mut Event, k: &str, v: Option<String>| {
        if let Some(v) = v {
            raw.insert(k.to_owned(), serde_json::Value::String(v.clone()));
            e.push(k, Value::text(v));
        }
    };
    put(&mut e, "facility", p.facility.map(|f| f.to_string()));
    put(&mut e, "severity", p.severity.map(|f| f.to_string()));
    put(&mut e, "host", p.host);
    put(&mut e, "app", p.app);
    put(&mut e, "pid", p.pid);
    put(&mut e, "msgid", p.msgid);
    for (k, v) in p.params {
        put(&mut e, &k, Some(v));
    }
    put(&mut e, "message", Some(p.message));
    e.time = p.time;
    e.raw = serde_json::Value::Object(raw);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3164_as_files_hold_it() {
        let l = parse_line(
            "Dec  6 10:01:02 web1 sshd[4242]: Failed password for root from 10.0.0.9",
            2026,
        )
        .expect("parses");
        assert_eq!(l.host.as_deref(), Some("web1"));
        assert_eq!(l.app.as_deref(), Some("sshd"));
        assert_eq!(l.pid.as_deref(), Some("4242"));
        assert_eq!(l.message, "Failed password for root from 10.0.0.9");
        assert_eq!(l.time.map(|t| t.day()), Some(6));
        let l = parse_line("<38>Feb 29 00:00:00 h su: x", 2024).expect("leap day");
        assert_eq!(l.facility, Some(4));
        assert_eq!(l.severity, Some(6));
    }

    #[test]
    fn rfc5424_with_structured_data() {
        // The RFC's own example 3.
        let l = parse_line(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry..."#,
            2026,
        )
        .expect("parses");
        assert_eq!(l.app.as_deref(), Some("evntslog"));
        assert_eq!(l.pid, None);
        assert_eq!(l.msgid.as_deref(), Some("ID47"));
        assert_eq!(
            l.params[1],
            ("eventSource".to_owned(), "Application".to_owned())
        );
        assert_eq!(l.message, "An application event log entry...");
        let l = parse_line(
            r#"<34>1 2003-10-11T22:14:15.003Z h su - ID47 - 'su root' failed"#,
            2026,
        )
        .expect("example 1");
        assert_eq!(l.message, "'su root' failed");
        let l = parse_line(r#"<34>1 - h a - - [x@1 k="a\"b\]c"]"#, 2026).expect("escapes");
        assert_eq!(l.params[0].1, "a\"b]c");
    }

    #[test]
    fn rubbish_is_not_syslog() {
        assert!(parse_line("hello", 2026).is_none());
        assert!(parse_line("<999>Dec  6 10:01:02 h a: m", 2026).is_none());
        assert!(parse_line("Foo  6 10:01:02 h a: m", 2026).is_none());
        assert!(parse_line("<34>1 notatime h a - - - m", 2026).is_none());
        assert!(parse_line("Dec 99 10:01:02 h a: m", 2026).is_none());
    }
}
