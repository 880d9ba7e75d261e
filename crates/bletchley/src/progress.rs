//! Progress for long commands: a bar on standard error when it is a terminal, nothing
//! otherwise (logs and pipes get the command's summary line instead).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar that may not be shown.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar labelled `label`, counting `unit` (e.g. "items read back").
    pub fn new(label: &str, unit: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{msg}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}} left)"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        Progress(Some(bar))
    }

    /// `done` of `total`.
    pub fn set(&self, done: u64, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
            b.set_position(done);
        }
    }

    /// Removes the bar (the caller prints its summary).
    pub fn finish(self) {
        if let Some(b) = self.0 {
            b.finish_and_clear();
        }
    }
}
