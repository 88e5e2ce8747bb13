//! berth-runtime: an OCI runtime with runc's command line.

mod cli;
mod commands;
mod exec;
mod logging;
mod unsupported;
mod update;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let logs_to_stderr = match logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        Ok(to_stderr) => to_stderr,
        Err(e) => {
            eprintln!("berth-runtime: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{e:#}");
            if !logs_to_stderr {
                eprintln!("berth-runtime: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
