//! Progress for long commands: a bar on standard error when it is a terminal; with
//! `BLETCHLEY_PROGRESS=lines`, a plain line on standard error every tenth of the way (or every
//! few seconds), for logs and service managers; nothing otherwise (logs and pipes get the
//! command's summary line instead).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// What a progress report counts.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Things, named (e.g. "items read back").
    Count(&'static str),
    /// Bytes.
    Bytes,
}

/// Where progress goes.
enum Sink {
    Hidden,
    Bar(ProgressBar),
    Lines(Mutex<LineState>),
}

struct LineState {
    label: String,
    unit: Unit,
    /// The last tenth reported, and when.
    tenth: u64,
    at: Instant,
    last: (u64, u64),
}

/// A progress report that may not be shown.
pub struct Progress(Sink);

/// How often a line is written at least, when the work moves.
const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// A report labelled `label`, counting `unit`.
    pub fn new(label: &str, unit: Unit) -> Progress {
        if std::env::var("BLETCHLEY_PROGRESS").is_ok_and(|v| v == "lines") {
            return Progress(Sink::Lines(Mutex::new(LineState {
                label: label.to_owned(),
                unit,
                tenth: 0,
                at: Instant::now(),
                last: (0, 0),
            })));
        }
        if !std::io::stderr().is_terminal() {
            return Progress(Sink::Hidden);
        }
        let counted = match unit {
            Unit::Count(what) => format!("{{pos}}/{{len}} {what} ({{per_sec}}"),
            Unit::Bytes => "{bytes}/{total_bytes} ({bytes_per_sec}".to_owned(),
        };
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(&format!("{{msg}} [{{bar:40}}] {counted}, {{eta}} left)"))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        Progress(Sink::Bar(bar))
    }

    /// `done` of `total`.
    pub fn set(&self, done: u64, total: u64) {
        match &self.0 {
            Sink::Hidden => {}
            Sink::Bar(b) => {
                b.set_length(total);
                b.set_position(done);
            }
            Sink::Lines(state) => {
                let Ok(mut s) = state.lock() else { return };
                if (done, total) == s.last {
                    return;
                }
                s.last = (done, total);
                let tenth = (done * 10).checked_div(total).unwrap_or(0);
                if tenth > s.tenth || s.at.elapsed() >= LINE_EVERY || done == total {
                    s.tenth = tenth;
                    s.at = Instant::now();
                    eprintln!("{}", line(&s.label, s.unit, done, total));
                }
            }
        }
    }

    /// Says `m` on standard output without tearing the bar.
    pub fn say(&self, m: &str) {
        match &self.0 {
            Sink::Bar(b) => b.suspend(|| println!("{m}")),
            _ => println!("{m}"),
        }
    }

    /// Removes the bar (the caller prints its summary).
    pub fn finish(self) {
        if let Sink::Bar(b) = self.0 {
            b.finish_and_clear();
        }
    }
}

/// `label: done/total unit (p%)`.
fn line(label: &str, unit: Unit, done: u64, total: u64) -> String {
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    match unit {
        Unit::Count(what) => format!("{label}: {done}/{total} {what} ({percent}%)"),
        Unit::Bytes => format!(
            "{label}: {}/{} ({percent}%)",
            HumanBytes(done),
            HumanBytes(total)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_how_far_in_the_unit_counted() {
        assert_eq!(
            line("index", Unit::Count("items"), 3, 12),
            "index: 3/12 items (25%)"
        );
        assert_eq!(line("sync", Unit::Bytes, 0, 0), "sync: 0 B/0 B (100%)");
        assert_eq!(
            line("sync", Unit::Bytes, 512, 2048),
            "sync: 512 B/2.00 KiB (25%)"
        );
    }
}
