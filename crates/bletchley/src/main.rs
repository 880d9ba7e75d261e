//! `bletchley`: argv, configuration and wiring. Nothing else knows the
//! command line.

mod bench;
mod cli;
mod commands;
mod demo;
mod unlock;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
