//! One function per command; each turns flags into a call of the runtime library.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};
use berth_runtime::container::{self, CreateOptions, RunOptions};
use berth_runtime::spec::{default_spec, joins_pid_namespace, Bundle, SpecFlavor};
use berth_runtime::state::{Report, StateRoot};
use berth_runtime::sys::sealed_exe;

use crate::cli::{Cli, Command, CreateArgs, EventsArgs, ListArgs, ListFormat, PsArgs, SpecArgs};

pub fn dispatch(cli: Cli) -> Result<u8> {
    // Only a new container's cgroup could come from systemd; the other commands act on
    // containers whose cgroups berth-runtime made itself (runc too reads the manager of an
    // existing container from its state, not from the flag).
    if cli.systemd_cgroup && matches!(cli.command, Command::Create(_) | Command::Run(_)) {
        return Err(crate::unsupported::systemd_cgroup());
    }
    let root = StateRoot::new(&cli.root);
    match cli.command {
        Command::Spec(args) => spec(args)?,
        Command::Create(args) => {
            container::create(&root, create_options(args)?)?;
        }
        Command::Start(args) => container::start(&root, &args.id)?,
        Command::Run(args) => {
            let code = container::run(
                &root,
                RunOptions {
                    create: create_options(args.create)?,
                    detach: args.detach,
                    keep: args.keep,
                },
            )?;
            return Ok(u8::try_from(code).unwrap_or(255));
        }
        Command::State(args) => print_json(&container::state(&root, &args.id)?)?,
        Command::Kill(args) => {
            let signal = berth_runtime::signal::parse(&args.signal)?;
            container::kill(&root, &args.id, signal, args.all)?;
        }
        Command::Delete(args) => container::delete(&root, &args.id, args.force)?,
        Command::List(args) => list(&root, &args)?,
        Command::Exec(args) => {
            let code = crate::exec::run(&root, args)?;
            return Ok(u8::try_from(code).unwrap_or(255));
        }
        Command::Pause(args) => container::pause(&root, &args.id)?,
        Command::Resume(args) => container::resume(&root, &args.id)?,
        Command::Ps(args) => ps(&root, &args)?,
        Command::Update(args) => {
            container::update(&root, &args.id, &crate::update::resources(&args)?)?
        }
        Command::Events(args) => events(&root, &args)?,
        Command::Features => print_json(&berth_runtime::features::features()?)?,
        Command::Checkpoint(_) => return Err(crate::unsupported::checkpoint_restore("checkpoint")),
        Command::Restore(_) => return Err(crate::unsupported::checkpoint_restore("restore")),
    }
    Ok(0)
}

/// An init that joins another container's pid namespace runs from a sealed in-memory copy
/// of this binary, so that container can never write to the host's runtime (CVE-2019-5736;
/// see `berth_runtime::sys::sealed_exe` for why other cases do not need it).
pub(crate) fn ensure_sealed() -> Result<()> {
    if sealed_exe::running_sealed() {
        return Ok(());
    }
    Err(sealed_exe::reexec_sealed()).context("re-execute from a sealed copy of berth-runtime")
}

fn ensure_sealed_if_needed(bundle: &Bundle) -> Result<()> {
    if !joins_pid_namespace(&bundle.spec) || sealed_exe::running_sealed() {
        return Ok(());
    }
    Err(sealed_exe::reexec_sealed()).context("re-execute from a sealed copy of berth-runtime")
}

/// Load the bundle once; re-execute sealed if it needs that, before anything is connected.
fn create_options(args: CreateArgs) -> Result<CreateOptions> {
    let bundle = Bundle::load(&args.bundle)?;
    ensure_sealed_if_needed(&bundle)?;
    let console_socket = args
        .console_socket
        .as_deref()
        .map(container::connect_console_socket)
        .transpose()?;
    Ok(CreateOptions {
        id: args.id,
        bundle,
        pid_file: args.pid_file,
        console_socket,
        preserve_fds: args.preserve_fds,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        foreground: false,
    })
}

fn spec(args: SpecArgs) -> Result<()> {
    let flavor = if args.rootless {
        SpecFlavor::Rootless {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    } else {
        SpecFlavor::Rootful
    };
    let path = args.bundle.join("config.json");
    let text = serde_json::to_string_pretty(&default_spec(flavor))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                anyhow::anyhow!("{} exists: remove it first", path.display())
            }
            _ => anyhow::Error::new(e).context(format!("create {}", path.display())),
        })?;
    writeln!(file, "{text}").with_context(|| format!("write {}", path.display()))
}

fn ps(root: &StateRoot, args: &PsArgs) -> Result<()> {
    if !args.ps_args.is_empty() {
        bail!("ps options ({}) are not supported: berth-runtime lists processes itself; use --format json", args.ps_args.join(" "));
    }
    let procs = container::ps(root, &args.id)?;
    match args.format {
        ListFormat::Json => print_json(&procs.iter().map(|p| p.pid).collect::<Vec<_>>()),
        ListFormat::Table => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "PID     CMD")?;
            for p in procs {
                writeln!(out, "{:<7} {}", p.pid, p.command)?;
            }
            Ok(())
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// One JSON object per line, flushed at once: `events` is read as a stream.
fn events(root: &StateRoot, args: &EventsArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut emit = |event: &container::Event| -> std::io::Result<()> {
        serde_json::to_writer(&mut out, event)?;
        writeln!(out)?;
        out.flush()
    };
    if args.stats {
        return Ok(emit(&container::stats(root, &args.id)?)?);
    }
    Ok(container::events(root, &args.id, args.interval, &mut emit)?)
}

fn list(root: &StateRoot, args: &ListArgs) -> Result<()> {
    let reports = container::list(root)?;
    if args.quiet {
        let mut out = std::io::stdout().lock();
        for r in &reports {
            writeln!(out, "{}", r.id)?;
        }
        return Ok(());
    }
    match args.format {
        ListFormat::Json => print_json(&reports),
        ListFormat::Table => print_table(&reports),
    }
}

/// runc's table: tabwriter with minimum width 12 and padding 3.
fn print_table(reports: &[Report]) -> Result<()> {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    let rows: Vec<[String; 6]> = std::iter::once(header)
        .chain(reports.iter().map(|r| {
            [
                r.id.clone(),
                r.pid.to_string(),
                r.status.to_string(),
                r.bundle.display().to_string(),
                r.created.clone(),
                r.owner.clone(),
            ]
        }))
        .collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == 5 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
