//! Readers: EVTX, JSON Lines and syslog files to [`Event`]s.
//!
//! A record that does not parse is skipped and counted, with a warning naming the file
//! and record; a file that is not of its format at all is refused with an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::event::Event;
use crate::mapping::Mapping;

pub mod evtx;
pub mod jsonl;
pub mod syslog;

/// The longest record a line-based reader accepts (a longer one is skipped, counted).
pub const MAX_LINE: usize = 4 << 20;

/// The formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Windows XML event log (binary `.evtx`).
    Evtx,
    /// One JSON object a line (Winlogbeat/ECS or plain).
    Jsonl,
    /// RFC 3164 or RFC 5424 lines.
    Syslog,
}

impl Format {
    /// Decides a file's format from its first bytes (then its name).
    pub fn sniff(path: &Path, head: &[u8]) -> Option<Format> {
        if head.starts_with(b"ElfFile\0") {
            return Some(Format::Evtx);
        }
        let first = head.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            return Some(Format::Jsonl);
        }
        let ext = path
            .extension()
            .and_then(|x| x.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("evtx") => Some(Format::Evtx),
            Some("json" | "jsonl" | "ndjson") => Some(Format::Jsonl),
            Some("log" | "syslog") | None => Some(Format::Syslog),
            _ if first == Some(&b'<') || head.first().is_some_and(u8::is_ascii_alphanumeric) => {
                Some(Format::Syslog)
            }
            _ => None,
        }
    }

    /// The format's name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Evtx => "evtx",
            Format::Jsonl => "jsonl",
            Format::Syslog => "syslog",
        }
    }
}

/// A file that cannot be read as its format.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not readable.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a file of any format read here.
    #[error("{}: not an EVTX, JSON Lines or syslog file", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// Not of its format.
    #[error("{}: not a valid {format} file: {why}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The format it claimed to be.
        format: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// A record skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// The record's number (EVTX's record id where known, else its position; a line
    /// number for line formats).
    pub record: u64,
    /// Why.
    pub why: String,
}

/// What reading a file found.
#[derive(Debug, Default, Clone)]
pub struct ReadStats {
    /// Records read and handed on.
    pub records: u64,
    /// Records skipped (all of them counted; the first hundred kept with reasons).
    pub skipped: u64,
    /// The first skipped records, with reasons.
    pub skipped_examples: Vec<Skipped>,
    /// Records read with a repair (invalid UTF-8 replaced).
    pub repaired: u64,
}

impl ReadStats {
    pub(crate) fn skip(&mut self, record: u64, why: String) {
        self.skipped += 1;
        if self.skipped_examples.len() < 100 {
            self.skipped_examples.push(Skipped { record, why });
        }
    }
}

/// Reads one file of any supported format, handing each event on.
pub fn read_file(
    path: &Path,
    mapping: &Mapping,
    threads: usize,
    on_event: &mut dyn FnMut(Event),
) -> Result<(Format, ReadStats), ReadError> {
    let head = read_head(path)?;
    let format = Format::sniff(path, &head).ok_or_else(|| ReadError::UnknownFormat {
        path: path.to_owned(),
    })?;
    let name: Arc<str> = Arc::from(path.display().to_string());
    let stats = match format {
        Format::Evtx => evtx::read(path, name, mapping, threads, on_event)?,
        Format::Jsonl => jsonl::read(path, name, mapping, on_event)?,
        Format::Syslog => syslog::read(path, name, mapping, on_event)?,
    };
    Ok((format, stats))
}

fn read_head(path: &Path) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut buf = vec![0; 512];
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..]).map_err(io)?;
        if k == 0 {
            break;
        }
        n += k;
    }
    buf.truncate(n);
    Ok(buf)
}

/// Reads a log held in memory (an item's content), of any supported format.
pub fn read_bytes(
    name: &str,
    bytes: Vec<u8>,
    mapping: &Mapping,
    on_event: &mut dyn FnMut(Event),
) -> Result<(Format, ReadStats), ReadError> {
    let path = Path::new(name);
    let head = &bytes[..bytes.len().min(512)];
    let format = Format::sniff(path, head).ok_or_else(|| ReadError::UnknownFormat {
        path: path.to_owned(),
    })?;
    let shared: Arc<str> = Arc::from(name);
    let stats = match format {
        Format::Evtx => evtx::read_bytes(bytes, shared, mapping, on_event)?,
        Format::Jsonl => {
            jsonl::read_from(std::io::Cursor::new(bytes), path, shared, mapping, on_event)?
        }
        Format::Syslog => {
            syslog::read_from(std::io::Cursor::new(bytes), path, shared, mapping, on_event)?
        }
    };
    Ok((format, stats))
}

/// Opens a file for the line readers.
pub(crate) fn open_lines(path: &Path) -> Result<std::io::BufReader<std::fs::File>, ReadError> {
    let file = std::fs::File::open(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(std::io::BufReader::with_capacity(1 << 16, file))
}

/// Reads lines of at most [`MAX_LINE`] bytes; a longer line is returned as `Err` with
/// its length, its bytes discarded.
pub(crate) fn for_each_line(
    mut r: impl std::io::BufRead,
    path: &Path,
    mut f: impl FnMut(u64, Result<&[u8], usize>),
) -> Result<(), ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let mut too_long = 0usize;
        loop {
            let buf = r.fill_buf().map_err(io)?;
            if buf.is_empty() {
                break;
            }
            let (chunk, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            let used = chunk.len();
            if too_long > 0 || line.len() + used > MAX_LINE {
                too_long += line.len() + used;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
            r.consume(used);
            if done {
                break;
            }
        }
        if line.is_empty() && too_long == 0 {
            return Ok(());
        }
        n += 1;
        if too_long > 0 {
            f(n, Err(too_long));
        } else {
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            f(n, Ok(&line));
        }
    }
}
