//! `bletchley`: argv, configuration and wiring. Nothing else knows the
//! command line.

mod backup;
mod bench;
mod bench_detect;
mod bench_embed;
mod bench_speech;
mod cases;
mod cli;
mod commands;
mod demo;
mod demo_cyber;
mod demo_speech;
mod detect;
mod hunt;
mod playbook;
mod progress;
mod semantic;
mod sites;
mod speech;
mod text_translation;
mod unlock;
mod witness;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = cli::Cli::parse();
    if let Err(e) = bletchley_ai::whisper::check_isa_env() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `bletchley search … | head` closes standard output early; `println!`
/// then panics. That is the reader's choice, not a fault: leave quietly
/// with the conventional status (128 + SIGPIPE) instead of a backtrace.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
