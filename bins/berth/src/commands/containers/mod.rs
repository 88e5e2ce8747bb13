//! The container commands: create and run (options, run), streams to and from them
//! (stream, exec, logs), listing (list) and the one-request commands (manage).

mod device_flags;
pub mod exec;
pub mod files;
pub mod host_flags;
pub mod list;
pub mod logs;
pub mod manage;
mod mounts;
mod net_flags;
pub mod options;
pub mod run;
pub mod stream;
pub mod usage;

use anyhow::Result;
use berth_api::client::Client;
use clap::Subcommand;

/// `berth container ...`
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create and start a container.
    Run(run::RunArgs),
    /// Create a container.
    Create(run::CreateOnlyArgs),
    /// Start containers.
    Start(run::StartArgs),
    /// Attach to a running container.
    Attach(run::AttachArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// List containers.
    #[command(alias = "list", alias = "ps")]
    Ls(list::PsArgs),
    /// Show a container's logs.
    Logs(logs::LogsArgs),
    /// Stop containers.
    Stop(manage::StopArgs),
    /// Kill containers.
    Kill(manage::KillArgs),
    /// Restart containers.
    Restart(manage::StopArgs),
    /// Remove containers.
    #[command(alias = "remove")]
    Rm(manage::RmArgs),
    /// Pause containers.
    Pause(manage::ContainersArgs),
    /// Unpause containers.
    Unpause(manage::ContainersArgs),
    /// Rename a container.
    Rename(manage::RenameArgs),
    /// Wait for containers to stop; print their exit codes.
    Wait(manage::ContainersArgs),
    /// Show a container's processes.
    Top(manage::TopArgs),
    /// Show a container's published ports.
    Port(manage::PortArgs),
    /// Remove all stopped containers.
    Prune(manage::PruneArgs),
    /// Show low-level information on containers.
    Inspect(manage::InspectArgs),
    /// Show containers' resource usage.
    Stats(usage::StatsArgs),
    /// Change containers' resource limits and restart policy.
    Update(usage::UpdateArgs),
    /// Copy files between a container and the local filesystem.
    Cp(files::CpArgs),
    /// Show what a container changed in its filesystem.
    Diff(files::DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(files::ExportArgs),
    /// Create an image from a container's changes.
    Commit(files::CommitArgs),
}

pub async fn container(client: &Client, cmd: ContainerCommand) -> Result<()> {
    use ContainerCommand as C;
    match cmd {
        C::Run(a) => run::run(client, a).await,
        C::Create(a) => run::create(client, a).await,
        C::Start(a) => run::start(client, a).await,
        C::Attach(a) => run::attach(client, a).await,
        C::Exec(a) => exec::exec(client, a).await,
        C::Ls(a) => list::ps(client, a).await,
        C::Logs(a) => logs::logs(client, a).await,
        C::Stop(a) => manage::stop(client, a).await,
        C::Kill(a) => manage::kill(client, a).await,
        C::Restart(a) => manage::restart(client, a).await,
        C::Rm(a) => manage::rm(client, a).await,
        C::Pause(a) => manage::pause(client, a).await,
        C::Unpause(a) => manage::unpause(client, a).await,
        C::Rename(a) => manage::rename(client, a).await,
        C::Wait(a) => manage::wait(client, a).await,
        C::Top(a) => manage::top(client, a).await,
        C::Port(a) => manage::port(client, a).await,
        C::Prune(a) => manage::prune(client, a).await,
        C::Inspect(a) => manage::inspect(client, a).await,
        C::Stats(a) => usage::stats(client, a).await,
        C::Update(a) => usage::update(client, a).await,
        C::Cp(a) => files::cp(client, a).await,
        C::Diff(a) => files::diff(client, a).await,
        C::Export(a) => files::export(client, a).await,
        C::Commit(a) => files::commit(client, a).await,
    }
}
