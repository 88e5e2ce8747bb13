//! berth: docker's commands for images and the system, spoken to berthd over its socket.

mod commands;
mod format;

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A Docker-compatible container engine: the command line"
)]
struct Cli {
    /// The daemon socket (unix:///path); default $BERTH_HOST or /run/berth/berth.sock.
    #[arg(short = 'H', long, global = true)]
    host: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the client and daemon versions.
    Version,
    /// Show system-wide information.
    Info,
    /// List images.
    Images(commands::images::ListArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(commands::images::ImageCommand),
    /// Load images from a tar archive (docker-archive or OCI layout).
    Load(commands::images::LoadArgs),
    /// Save images to a tar archive.
    Save(commands::images::SaveArgs),
    /// Import a root filesystem tarball as an image.
    Import(commands::images::ImportArgs),
    /// Give an image another name.
    Tag(commands::images::TagArgs),
    /// Remove images.
    Rmi(commands::images::RemoveArgs),
    /// Show an image's layers and how they were made.
    History(commands::images::HistoryArgs),
    /// Show low-level information on images.
    Inspect(commands::images::InspectArgs),
    /// Manage the system.
    #[command(subcommand)]
    System(commands::system::SystemCommand),
}

fn socket(host: Option<String>) -> Result<PathBuf> {
    let host = host
        .or_else(|| std::env::var("BERTH_HOST").ok())
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    match host.strip_prefix("unix://") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!("host {host:?}: only unix:///path is supported"),
    }
}

async fn run(cli: Cli) -> Result<()> {
    let client = berth_api::client::Client::connect(&socket(cli.host)?).await?;
    use commands::images as img;
    match cli.command {
        Command::Version => commands::system::version(&client).await,
        Command::Info => commands::system::info(&client).await,
        Command::Images(a) => img::list(&client, a).await,
        Command::Image(c) => img::image(&client, c).await,
        Command::Load(a) => img::load(&client, a).await,
        Command::Save(a) => img::save(&client, a).await,
        Command::Import(a) => img::import(&client, a).await,
        Command::Tag(a) => img::tag(&client, a).await,
        Command::Rmi(a) => img::remove(&client, a).await,
        Command::History(a) => img::history(&client, a).await,
        Command::Inspect(a) => img::inspect(&client, a).await,
        Command::System(c) => commands::system::system(&client, c).await,
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
