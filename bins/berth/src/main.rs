//! berth: docker's commands for containers, images and the system, spoken to berthd over
//! its socket.

mod commands;
mod exit;
mod format;
mod terminal;

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use commands::containers;

const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A Docker-compatible container engine: the command line"
)]
struct Cli {
    /// The daemon socket (unix:///path); default $BERTH_HOST, else $DOCKER_HOST, else
    /// /run/berth/berth.sock. Before the command, as docker's: after it, `-H` is the
    /// command's own (history's --human).
    #[arg(short = 'H', long)]
    host: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and run a container from an image.
    Run(containers::run::RunArgs),
    /// Create a container.
    Create(containers::run::CreateOnlyArgs),
    /// Start containers.
    Start(containers::run::StartArgs),
    /// Attach to a running container.
    Attach(containers::run::AttachArgs),
    /// Run a command in a running container.
    Exec(containers::exec::ExecArgs),
    /// List containers.
    Ps(containers::list::PsArgs),
    /// Show a container's logs.
    Logs(containers::logs::LogsArgs),
    /// Stop containers.
    Stop(containers::manage::StopArgs),
    /// Kill containers.
    Kill(containers::manage::KillArgs),
    /// Restart containers.
    Restart(containers::manage::StopArgs),
    /// Remove containers.
    Rm(containers::manage::RmArgs),
    /// Pause containers.
    Pause(containers::manage::ContainersArgs),
    /// Unpause containers.
    Unpause(containers::manage::ContainersArgs),
    /// Rename a container.
    Rename(containers::manage::RenameArgs),
    /// Wait for containers to stop; print their exit codes.
    Wait(containers::manage::ContainersArgs),
    /// Show a container's processes.
    Top(containers::manage::TopArgs),
    /// Show a container's published ports.
    Port(containers::manage::PortArgs),
    /// Show containers' resource usage.
    Stats(containers::usage::StatsArgs),
    /// Change containers' resource limits and restart policy.
    Update(containers::usage::UpdateArgs),
    /// Copy files between a container and the local filesystem.
    Cp(containers::files::CpArgs),
    /// Show what a container changed in its filesystem.
    Diff(containers::files::DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(containers::files::ExportArgs),
    /// Create an image from a container's changes.
    Commit(containers::files::CommitArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(containers::ContainerCommand),
    /// Show the client and daemon versions.
    Version(commands::system::FormatArgs),
    /// Show system-wide information.
    Info(commands::system::FormatArgs),
    /// List images.
    Images(commands::images::ListArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(commands::images::ImageCommand),
    /// Build an image from a Dockerfile.
    Build(commands::build::BuildArgs),
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
    /// Show low-level information on containers or images.
    Inspect(containers::manage::InspectArgs),
    /// Download an image from a registry.
    Pull(commands::registry::PullArgs),
    /// Upload an image to a registry.
    Push(commands::registry::PushArgs),
    /// Log in to a registry (credentials kept in the docker CLI's config.json).
    Login(commands::registry::LoginArgs),
    /// Log out from a registry.
    Logout(commands::registry::LogoutArgs),
    /// Search Docker Hub (not supported: refused by the daemon).
    Search(commands::registry::SearchArgs),
    /// Manage the system.
    #[command(subcommand)]
    System(commands::system::SystemCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(commands::volumes::VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(commands::networks::NetworkCommand),
    /// Show the daemon's events as they happen.
    Events(commands::events::EventsArgs),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(commands::system::BuilderCommand),
}

/// The daemon's socket: -H, else $BERTH_HOST (berth's own), else $DOCKER_HOST (as the
/// docker CLI reads it, so one setting serves both), else the default. Empty variables
/// count as unset, as the docker CLI counts them.
fn socket(host: Option<String>) -> Result<PathBuf> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let host = host
        .or_else(|| env("BERTH_HOST"))
        .or_else(|| env("DOCKER_HOST"))
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    match host.strip_prefix("unix://") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!("host {host:?}: only unix:///path is supported"),
    }
}

async fn run(cli: Cli) -> Result<()> {
    // Logging out touches only the local credentials file.
    let command = match cli.command {
        Command::Logout(a) => return commands::registry::logout(a),
        other => other,
    };
    let client = berth_api::client::Client::connect(&socket(cli.host)?).await?;
    use commands::images as img;
    use containers::ContainerCommand as C;
    let container = |c: C| async { containers::container(&client, c).await };
    use commands::registry as reg;
    match command {
        Command::Run(a) => container(C::Run(a)).await,
        Command::Create(a) => container(C::Create(a)).await,
        Command::Start(a) => container(C::Start(a)).await,
        Command::Attach(a) => container(C::Attach(a)).await,
        Command::Exec(a) => container(C::Exec(a)).await,
        Command::Ps(a) => container(C::Ls(a)).await,
        Command::Logs(a) => container(C::Logs(a)).await,
        Command::Stop(a) => container(C::Stop(a)).await,
        Command::Kill(a) => container(C::Kill(a)).await,
        Command::Restart(a) => container(C::Restart(a)).await,
        Command::Rm(a) => container(C::Rm(a)).await,
        Command::Pause(a) => container(C::Pause(a)).await,
        Command::Unpause(a) => container(C::Unpause(a)).await,
        Command::Rename(a) => container(C::Rename(a)).await,
        Command::Wait(a) => container(C::Wait(a)).await,
        Command::Top(a) => container(C::Top(a)).await,
        Command::Port(a) => container(C::Port(a)).await,
        Command::Stats(a) => container(C::Stats(a)).await,
        Command::Update(a) => container(C::Update(a)).await,
        Command::Inspect(a) => container(C::Inspect(a)).await,
        Command::Cp(a) => container(C::Cp(a)).await,
        Command::Diff(a) => container(C::Diff(a)).await,
        Command::Export(a) => container(C::Export(a)).await,
        Command::Commit(a) => container(C::Commit(a)).await,
        Command::Container(c) => container(c).await,
        Command::Version(a) => commands::system::version(&client, a).await,
        Command::Info(a) => commands::system::info(&client, a).await,
        Command::Images(a) => img::list(&client, a).await,
        Command::Image(c) => img::image(&client, c).await,
        Command::Build(a) => commands::build::build(&client, a).await,
        Command::Load(a) => img::load(&client, a).await,
        Command::Save(a) => img::save(&client, a).await,
        Command::Import(a) => img::import(&client, a).await,
        Command::Tag(a) => img::tag(&client, a).await,
        Command::Rmi(a) => img::remove(&client, a).await,
        Command::History(a) => img::history(&client, a).await,
        Command::Pull(a) => reg::pull(&client, a).await,
        Command::Push(a) => reg::push(&client, a).await,
        Command::Login(a) => reg::login(&client, a).await,
        Command::Logout(_) => Ok(()),
        Command::Search(a) => reg::search(&client, a).await,
        Command::System(c) => commands::system::system(&client, c).await,
        Command::Volume(c) => commands::volumes::volume(&client, c).await,
        Command::Network(c) => commands::networks::network(&client, c).await,
        Command::Events(a) => commands::events::events(&client, a).await,
        Command::Builder(c) => commands::system::builder(&client, c).await,
    }
}

fn main() -> std::process::ExitCode {
    exit::quiet_on_closed_stdout();
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
    let result = rt.block_on(run(cli));
    // Standard input may still be read by a blocking thread: do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if exit::stdout_was_closed(&e) => exit::by_sigpipe(),
        Err(e) => match e.downcast_ref::<exit::Exit>() {
            Some(exit) => {
                if let Some(error) = &exit.error {
                    eprintln!("berth: {error:#}");
                }
                std::process::ExitCode::from(exit.code)
            }
            None => {
                eprintln!("{e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
