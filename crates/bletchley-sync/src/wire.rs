//! HTTP/1.1 between sites, over a mutually authenticated TLS stream: just what replication
//! needs (fixed-length bodies, keep-alive), with hard limits so that a peer sending garbage or
//! oversized frames is refused before it costs memory. Heads are parsed by `httparse`.

use std::io::{BufRead, Read, Write};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The largest request or response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// The largest body accepted (an operation page or a content chunk, with room to spare).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// A request as the hub reads it.
#[derive(Debug)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The body.
    pub body: Vec<u8>,
}

/// A response as the field site reads it.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A failed read or write: TLS alerts (the peer refused us) are final; anything else is the
/// link and worth retrying.
pub(crate) fn io_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::InvalidData {
        Error::Refused(e.to_string())
    } else {
        Error::Link(e.to_string())
    }
}

fn proto(msg: impl Into<String>) -> Error {
    Error::Protocol(msg.into())
}

/// Reads up to the blank line that ends a head; `None` at a clean end of stream.
fn read_head<R: BufRead>(r: &mut R) -> Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        if buf.is_empty() {
            if head.is_empty() {
                return Ok(None);
            }
            return Err(Error::Link("the connection closed inside a head".into()));
        }
        let take = buf.len().min(MAX_HEAD + 4 - head.len());
        let start = head.len();
        head.extend_from_slice(&buf[..take]);
        // Look for the end from a little before what was just added.
        let from = start.saturating_sub(3);
        if let Some(pos) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + pos + 4;
            r.consume(end - start);
            head.truncate(end);
            return Ok(Some(head));
        }
        r.consume(take);
        if head.len() > MAX_HEAD {
            return Err(proto(format!("a head longer than {MAX_HEAD} bytes")));
        }
    }
}

fn content_length(headers: &[httparse::Header<'_>]) -> Result<usize> {
    let mut len = 0usize;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(proto("chunked transfer encoding is not accepted"));
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| proto("a bad content-length"))?;
        }
    }
    if len > MAX_BODY {
        return Err(proto(format!("a body of {len} bytes (at most {MAX_BODY})")));
    }
    Ok(len)
}

fn read_body<R: Read>(r: &mut R, len: usize) -> Result<Vec<u8>> {
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(io_error)?;
    Ok(body)
}

/// Reads one request; `None` when the peer closed the connection between requests.
pub fn read_request<R: BufRead>(r: &mut R) -> Result<Option<Request>> {
    let Some(head) = read_head(r)? else {
        return Ok(None);
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(proto("not an HTTP request")),
    }
    let method = req.method.unwrap_or_default().to_owned();
    let path = req.path.unwrap_or_default().to_owned();
    let len = content_length(req.headers)?;
    let body = read_body(r, len)?;
    Ok(Some(Request { method, path, body }))
}

/// Writes one response.
pub fn write_response<W: Write>(
    w: &mut W,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<()> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes()).map_err(io_error)?;
    w.write_all(body).map_err(io_error)?;
    w.flush().map_err(io_error)
}

/// Writes one request.
pub fn write_request<W: Write>(w: &mut W, method: &str, path: &str, body: &[u8]) -> Result<()> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: bletchley-site\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    w.write_all(head.as_bytes()).map_err(io_error)?;
    w.write_all(body).map_err(io_error)?;
    w.flush().map_err(io_error)
}

/// Reads one response.
pub fn read_response<R: BufRead>(r: &mut R) -> Result<Response> {
    let head = read_head(r)?.ok_or_else(|| Error::Link("the hub closed the connection".into()))?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(proto("not an HTTP response")),
    }
    let status = resp.code.unwrap_or(0);
    let len = content_length(resp.headers)?;
    let headers = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let body = read_body(r, len)?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Parses a rate such as `256kbit`, `2mbit`, `64kB` or a plain number of bytes per second.
pub fn parse_rate(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        Error::Invalid(format!(
            "rate {s:?}: expected a number and a unit, e.g. 256kbit"
        ))
    })?;
    let bytes_per_s = match unit.trim() {
        "" | "b" | "bps" => n,
        "bit" | "bit/s" => n / 8.0,
        "kbit" | "kbit/s" | "kbps" => n * 1000.0 / 8.0,
        "mbit" | "mbit/s" | "mbps" => n * 1_000_000.0 / 8.0,
        "gbit" | "gbit/s" => n * 1_000_000_000.0 / 8.0,
        "kb" | "kib" => n * 1024.0,
        "mb" | "mib" => n * 1024.0 * 1024.0,
        other => {
            return Err(Error::Invalid(format!(
                "rate {s:?}: unknown unit {other:?} (use bit, kbit, mbit, gbit, kB or MB)"
            )));
        }
    };
    if bytes_per_s.is_nan() || bytes_per_s < 1.0 {
        return Err(Error::Invalid(format!("rate {s:?} is too small")));
    }
    Ok(bytes_per_s as u64)
}

/// A token bucket: at most `rate` bytes per second, in bursts of at most a tenth of a second.
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Bucket {
        Bucket {
            rate: rate as f64,
            tokens: 0.0,
            last: Instant::now(),
        }
    }

    /// Waits until `n` bytes may pass; returns how many may (at most `n`).
    fn take(&mut self, n: usize) -> usize {
        let burst = (self.rate / 10.0).max(1500.0);
        loop {
            let now = Instant::now();
            self.tokens =
                (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(burst);
            self.last = now;
            if self.tokens >= 1.0 {
                let k = (self.tokens as usize).min(n).max(1);
                self.tokens -= k as f64;
                return k;
            }
            std::thread::sleep(Duration::from_secs_f64(
                ((1.0 - self.tokens) / self.rate).max(0.001),
            ));
        }
    }
}

/// A stream whose reads and writes are each held to a rate: the link's bandwidth cap, applied
/// under TLS so that it counts every byte on the wire.
pub struct Throttled<S> {
    inner: S,
    read: Option<Bucket>,
    write: Option<Bucket>,
}

impl<S> Throttled<S> {
    /// `rate` bytes per second each way; `None` for no cap.
    pub fn new(inner: S, rate: Option<u64>) -> Throttled<S> {
        Throttled {
            inner,
            read: rate.map(Bucket::new),
            write: rate.map(Bucket::new),
        }
    }
}

impl<S: Read> Read for Throttled<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match &mut self.read {
            Some(b) => b.take(buf.len()),
            None => buf.len(),
        };
        self.inner.read(&mut buf[..n])
    }
}

impl<S: Write> Write for Throttled<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match &mut self.write {
            Some(b) => b.take(buf.len()),
            None => buf.len(),
        };
        self.inner.write(&buf[..n])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rates_parse_as_people_write_them() {
        assert_eq!(parse_rate("256kbit").expect("rate"), 32_000);
        assert_eq!(parse_rate("2mbit").expect("rate"), 250_000);
        assert_eq!(parse_rate("64kB").expect("rate"), 65_536);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0kbit").is_err());
        assert!(parse_rate("3 furlongs").is_err());
    }

    #[test]
    fn a_request_round_trips_and_oversized_ones_are_refused() {
        let mut buf = Vec::new();
        write_request(&mut buf, "POST", "/sync/v1/pull", b"{}").expect("write");
        let mut r = std::io::BufReader::new(&buf[..]);
        let req = read_request(&mut r).expect("read").expect("one");
        assert_eq!(
            (req.method.as_str(), req.path.as_str(), &req.body[..]),
            ("POST", "/sync/v1/pull", &b"{}"[..])
        );
        assert!(read_request(&mut r).expect("end").is_none());

        let big = format!(
            "POST / HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(read_request(&mut std::io::BufReader::new(big.as_bytes())).is_err());
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD + 10));
        assert!(read_request(&mut std::io::BufReader::new(long.as_bytes())).is_err());
    }

    proptest! {
        #[test]
        fn garbage_is_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = read_request(&mut std::io::BufReader::new(&bytes[..]));
            let _ = read_response(&mut std::io::BufReader::new(&bytes[..]));
        }
    }
}
