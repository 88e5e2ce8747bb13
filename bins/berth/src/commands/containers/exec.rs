//! exec: a new process in a running container, attached or detached.

use anyhow::{Context, Result};
use berth_api::client::Client;
use berth_api_types::exec::{ExecConfig, ExecInspect, ExecStartConfig, IdResponse};
use clap::Args;
use serde_json::Value;

use super::stream::{self, Ended, Session};
use crate::exit;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Run in the background.
    #[arg(short, long)]
    detach: bool,
    /// Keep standard input open.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long)]
    env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short, long)]
    user: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    privileged: bool,
    /// The key sequence for detaching.
    #[arg(long)]
    detach_keys: Option<String>,
    /// The container, then the command and its arguments.
    #[arg(value_name = "CONTAINER COMMAND [ARG...]", required = true, num_args = 2.., trailing_var_arg = true)]
    container_and_command: Vec<String>,
}

pub async fn exec(client: &Client, args: ExecArgs) -> Result<()> {
    let attached = !args.detach;
    let (container, command) = args
        .container_and_command
        .split_first()
        .context("no container given")?;
    let body = ExecConfig {
        attach_stdin: attached && args.interactive,
        attach_stdout: attached,
        attach_stderr: attached,
        tty: args.tty,
        cmd: command.to_vec(),
        env: super::options::environment(&args.env_file, &args.env)?,
        privileged: args.privileged,
        working_dir: args.workdir.clone().unwrap_or_default(),
        user: args.user.clone().unwrap_or_default(),
        detach_keys: args.detach_keys.clone().unwrap_or_default(),
        console_size: args
            .tty
            .then(crate::terminal::size)
            .flatten()
            .map(|(h, w)| [h.into(), w.into()]),
        ..ExecConfig::default()
    };
    let created: IdResponse = client
        .post_body(&super::run::container_path(container, "/exec"), &body)
        .await?;
    if created.id.is_empty() {
        anyhow::bail!("the daemon sent no exec id");
    }
    let id = created.id;
    let start = format!("/exec/{id}/start");
    let start_config = |detach| ExecStartConfig {
        detach,
        tty: args.tty,
        console_size: None,
    };
    if args.detach {
        client
            .post_body::<_, Value>(&start, &start_config(true))
            .await?;
        return Ok(());
    }
    let conn = client.hijack(&start, &start_config(false)).await?;
    let session = Session {
        tty: args.tty,
        stdin: args.interactive,
        detach_keys: args.detach_keys,
    };
    let _raw = if args.tty && args.interactive {
        crate::terminal::RawMode::enable()?
    } else {
        None
    };
    let resizes = match args.tty {
        true => tokio::spawn(stream::follow_resizes(
            client.clone(),
            format!("/exec/{id}/resize"),
        )),
        false => tokio::spawn(async {}),
    };
    let ended = stream::stream(conn, &session).await;
    resizes.abort();
    drop(_raw);
    if ended? == Ended::Detached {
        // As the docker CLI: an exec left with the detach keys is an error of the command
        // (the process runs on).
        eprintln!("read escape sequence");
        return Err(exit::with_code(1));
    }
    let inspected: ExecInspect = client.get_json(&format!("/exec/{id}/json")).await?;
    match inspected.exit_code.unwrap_or(0) {
        0 => Ok(()),
        code => Err(exit::with_code(code.into())),
    }
}
