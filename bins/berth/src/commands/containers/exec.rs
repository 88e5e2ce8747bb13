//! exec: a new process in a running container, attached or detached.

use anyhow::{Context, Result};
use berth_api::client::Client;
use clap::Args;
use serde_json::{json, Value};

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
    let mut body = json!({
        "AttachStdin": attached && args.interactive,
        "AttachStdout": attached,
        "AttachStderr": attached,
        "Tty": args.tty,
        "Cmd": command,
        "Env": args.env,
        "Privileged": args.privileged,
    });
    if let Some(w) = &args.workdir {
        body["WorkingDir"] = json!(w);
    }
    if let Some(u) = &args.user {
        body["User"] = json!(u);
    }
    if let Some(k) = &args.detach_keys {
        body["DetachKeys"] = json!(k);
    }
    if args.tty {
        if let Some((h, w)) = crate::terminal::size() {
            body["ConsoleSize"] = json!([h, w]);
        }
    }
    let created: Value = client
        .post_body(&super::run::container_path(container, "/exec"), &body)
        .await?;
    let id = created["Id"]
        .as_str()
        .context("the daemon sent no exec id")?
        .to_string();
    let start = format!("/exec/{id}/start");
    if args.detach {
        client
            .post_body::<Value>(&start, &json!({"Detach": true, "Tty": args.tty}))
            .await?;
        return Ok(());
    }
    let conn = client
        .hijack(&start, &json!({"Detach": false, "Tty": args.tty}))
        .await?;
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
    let inspected: Value = client.get_json(&format!("/exec/{id}/json")).await?;
    match inspected["ExitCode"].as_i64().unwrap_or(0) {
        0 => Ok(()),
        code => Err(exit::with_code(code)),
    }
}
