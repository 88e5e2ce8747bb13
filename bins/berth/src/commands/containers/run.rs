//! create, run, start, attach: the commands that start containers and may stay attached to
//! them, as the docker CLI does it (attach and wait are asked for before start, so that no
//! output and no exit is missed).

use anyhow::{bail, Result};
use berth_api::client::{query, read_json, Client, ClientError};
use berth_api_types::container::{CreateResponse, InspectResponse, WaitResponse};
use clap::{ArgAction, Args};
use serde_json::Value;

use super::options::{CreateArgs, PullPolicy};
use super::stream::{self, Ended, Session};
use crate::exit;

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    detach: bool,
    /// The key sequence for detaching (default ctrl-p,ctrl-q).
    #[arg(long)]
    detach_keys: Option<String>,
    /// Pass the signals this command receives to the container (not with a TTY).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    sig_proxy: bool,
    #[command(flatten)]
    create: CreateArgs,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct CreateOnlyArgs {
    #[command(flatten)]
    create: CreateArgs,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach standard output and error, and wait for the container.
    #[arg(short, long)]
    attach: bool,
    /// Attach standard input.
    #[arg(short, long)]
    interactive: bool,
    /// The key sequence for detaching.
    #[arg(long)]
    detach_keys: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach standard input.
    #[arg(long)]
    no_stdin: bool,
    /// The key sequence for detaching.
    #[arg(long)]
    detach_keys: Option<String>,
    /// Pass the signals this command receives to the container (not with a TTY).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    sig_proxy: bool,
    container: String,
}

pub fn container_path(name: &str, action: &str) -> String {
    format!("/containers/{}{action}", berth_api::client::path_name(name))
}

/// POST /containers/create; the new id. Warnings go to standard error.
async fn create_container(client: &Client, args: &CreateArgs) -> Result<String> {
    use crate::commands::registry::{pull_image, Shown};
    let body = args.body()?;
    // Before anything else, as the docker CLI: a file left by another run stops this one.
    let mut cidfile = super::host_flags::CidFile::create(args.host_flags.cidfile.as_deref())?;
    let mut q = Vec::new();
    if let Some(name) = &args.name {
        q.push(("name", name.as_str()));
    }
    let platform = args.platform.as_deref();
    if let Some(p) = platform {
        q.push(("platform", p));
    }
    let path = format!("/containers/create?{}", query(&q));
    let image = body.image.as_str();
    let shown = if args.quiet {
        Shown::Quiet
    } else {
        Shown::Stderr
    };
    if args.pull == PullPolicy::Always {
        pull_image(client, &with_tag(image), platform, shown).await?;
    }
    let created: CreateResponse = match client.post_body(&path, &body).await {
        // Missing, or present for another platform than asked: pull (as the docker CLI).
        Err(ClientError::Daemon {
            status: 404,
            message,
        }) if args.pull == PullPolicy::Missing
            && (message.starts_with("No such image")
                || message.contains("does not match the specified platform")) =>
        {
            if !args.quiet {
                eprintln!("Unable to find image '{}' locally", with_tag(image));
            }
            pull_image(client, &with_tag(image), platform, shown).await?;
            client.post_body(&path, &body).await?
        }
        other => other?,
    };
    for warning in &created.warnings {
        eprintln!("WARNING: {warning}");
    }
    if created.id.is_empty() {
        bail!("the daemon sent no container id");
    }
    cidfile.write(&created.id)?;
    Ok(created.id)
}

/// `busybox` as docker names it when pulling: `busybox:latest` (the daemon's create
/// refuses a name that does not parse, so one that does not is passed on as given).
fn with_tag(image: &str) -> String {
    match berth_image::Reference::parse(image) {
        Ok(r) if r.tag.is_none() && r.digest.is_none() => format!("{image}:latest"),
        _ => image.to_string(),
    }
}

pub async fn create(client: &Client, args: CreateOnlyArgs) -> Result<()> {
    let id = create_container(client, &args.create).await?;
    println!("{id}");
    Ok(())
}

/// What an attached command streams, and how.
struct Attach<'a> {
    id: &'a str,
    session: Session,
    /// Standard output and error wanted (`-a`; both unless it names others).
    output: (bool, bool),
    sig_proxy: bool,
}

impl Attach<'_> {
    async fn connect(&self, client: &Client) -> Result<berth_api::client::Hijacked> {
        let flag = |on: bool| if on { "1" } else { "0" };
        let mut q = vec![
            ("stream", "1"),
            ("stdout", flag(self.output.0)),
            ("stderr", flag(self.output.1)),
            ("stdin", flag(self.session.stdin)),
        ];
        if let Some(keys) = &self.session.detach_keys {
            q.push(("detachKeys", keys));
        }
        let path = container_path(self.id, &format!("/attach?{}", query(&q)));
        Ok(client.hijack(&path, &()).await?)
    }

    /// Stream in raw mode (for a TTY), resizing and proxying signals meanwhile.
    async fn stream(&self, client: &Client, conn: berth_api::client::Hijacked) -> Result<Ended> {
        let _raw = if self.session.tty && self.session.stdin {
            crate::terminal::RawMode::enable()?
        } else {
            None
        };
        let helpers = if self.session.tty {
            tokio::spawn(stream::follow_resizes(
                client.clone(),
                container_path(self.id, "/resize"),
            ))
        } else if self.sig_proxy {
            tokio::spawn(proxy_signals(client.clone(), self.id.to_string()))
        } else {
            tokio::spawn(async {})
        };
        let ended = stream::stream(conn, &self.session).await;
        helpers.abort();
        ended
    }
}

pub async fn run(client: &Client, args: RunArgs) -> Result<()> {
    let c = &args.create;
    if args.detach && !c.attach.is_empty() {
        return Err(exit::failed(
            125,
            anyhow::anyhow!("conflicting options: cannot specify both --attach and --detach"),
        ));
    }
    let streams = c.streams().map_err(|e| exit::failed(125, e))?;
    let id = create_container(client, c)
        .await
        .map_err(|e| exit::failed(125, e))?;
    let start = container_path(&id, "/start");
    if args.detach {
        client
            .post_empty(&start)
            .await
            .map_err(exit::start_failure)?;
        println!("{id}");
        return Ok(());
    }
    let attach = Attach {
        id: &id,
        session: Session {
            tty: c.tty,
            stdin: streams.stdin,
            detach_keys: args.detach_keys.clone(),
        },
        output: (streams.stdout, streams.stderr),
        sig_proxy: args.sig_proxy,
    };
    let conn = attach
        .connect(client)
        .await
        .map_err(|e| exit::failed(125, e))?;
    let condition = if c.rm { "removed" } else { "next-exit" };
    let waited = client
        .post_for_stream(&container_path(
            &id,
            &format!("/wait?condition={condition}"),
        ))
        .await
        .map_err(|e| exit::failed(125, e))?;
    if let Err(e) = client.post_empty(&start).await {
        if c.rm {
            let _ = client
                .delete_json::<Value>(&container_path(&id, "?force=1"))
                .await;
        }
        return Err(exit::start_failure(e));
    }
    if attach.stream(client, conn).await? == Ended::Detached {
        return Ok(());
    }
    let status: WaitResponse = read_json(waited).await?;
    exit_with(&status)
}

/// A wait answer as this command's end: the container's code, or its error.
fn exit_with(status: &WaitResponse) -> Result<()> {
    if let Some(error) = &status.error {
        return Err(exit::failed(125, anyhow::anyhow!("{}", error.message)));
    }
    match status.status_code {
        0 => Ok(()),
        code => Err(exit::with_code(code)),
    }
}

/// The container's id, Tty and OpenStdin: how to attach to it or read its log.
pub(super) async fn tty_and_stdin(client: &Client, name: &str) -> Result<(String, bool, bool)> {
    let c: InspectResponse = client.get_json(&container_path(name, "/json")).await?;
    Ok((c.id, c.config.tty, c.config.open_stdin))
}

pub async fn start(client: &Client, args: StartArgs) -> Result<()> {
    if !(args.attach || args.interactive) {
        return super::manage::post_to_each(client, &args.containers, "/start").await;
    }
    let [name] = args.containers.as_slice() else {
        anyhow::bail!("you cannot start and attach multiple containers at once");
    };
    let (id, tty, open_stdin) = tty_and_stdin(client, name).await?;
    let attach = Attach {
        id: &id,
        session: Session {
            tty,
            stdin: args.interactive && open_stdin,
            detach_keys: args.detach_keys,
        },
        output: (true, true),
        sig_proxy: true,
    };
    let conn = attach.connect(client).await?;
    let waited = client
        .post_for_stream(&container_path(&id, "/wait?condition=next-exit"))
        .await?;
    client.post_empty(&container_path(&id, "/start")).await?;
    if attach.stream(client, conn).await? == Ended::Detached {
        return Ok(());
    }
    exit_with(&read_json(waited).await?)
}

pub async fn attach(client: &Client, args: AttachArgs) -> Result<()> {
    let (id, tty, open_stdin) = tty_and_stdin(client, &args.container).await?;
    let attach = Attach {
        id: &id,
        session: Session {
            tty,
            stdin: open_stdin && !args.no_stdin,
            detach_keys: args.detach_keys,
        },
        output: (true, true),
        sig_proxy: args.sig_proxy,
    };
    let conn = attach.connect(client).await?;
    if attach.stream(client, conn).await? == Ended::Detached {
        return Ok(());
    }
    // The stream ended with the container: its exit code, as docker attach returns it.
    let status: WaitResponse = client.post_json(&container_path(&id, "/wait")).await?;
    exit_with(&status)
}

/// The daemon's message alone (docker prints it after its own prefix).
pub fn daemon_message(e: &berth_api::client::ClientError) -> String {
    match e {
        berth_api::client::ClientError::Daemon { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Pass SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 on to the container.
async fn proxy_signals(client: Client, id: String) {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        ("SIGINT", SignalKind::interrupt()),
        ("SIGTERM", SignalKind::terminate()),
        ("SIGHUP", SignalKind::hangup()),
        ("SIGQUIT", SignalKind::quit()),
        ("SIGUSR1", SignalKind::user_defined1()),
        ("SIGUSR2", SignalKind::user_defined2()),
    ];
    let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(8);
    for (name, kind) in kinds {
        let Ok(mut s) = signal(kind) else { continue };
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(name).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    while let Some(name) = rx.recv().await {
        let path = container_path(&id, &format!("/kill?signal={name}"));
        let _ = client.post_empty(&path).await;
    }
}
