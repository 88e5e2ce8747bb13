//! `exec`: the process to run, from --process or from the container's own process plus
//! runc's flags.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_runtime::container::{self, ExecOptions};
use berth_runtime::state::StateRoot;
use oci_spec::runtime::{Capabilities, Capability, Process};

use crate::cli::ExecArgs;

pub fn run(root: &StateRoot, args: ExecArgs) -> Result<i32> {
    if args.process_label.is_some() {
        bail!("--process-label is not supported: berth-runtime has no SELinux support");
    }
    if args.apparmor.is_some() {
        bail!("--apparmor is not supported: berth-runtime has no AppArmor support");
    }
    // The process joins the container's pid namespace: run from a sealed copy first.
    crate::commands::ensure_sealed()?;
    let process = match &args.process {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            berth_runtime::spec::parse_process(&text)
                .with_context(|| format!("{} is not a valid process", path.display()))?
        }
        None => from_flags(root, &args)?,
    };
    let console_socket = args
        .console_socket
        .as_deref()
        .map(container::connect_console_socket)
        .transpose()?;
    Ok(container::exec(
        root,
        ExecOptions {
            id: args.id,
            process,
            console_socket,
            detach: args.detach,
            pid_file: args.pid_file,
            preserve_fds: args.preserve_fds,
            ignore_paused: args.ignore_paused,
            cgroups: args.cgroup,
        },
    )?)
}

/// The container's process, with the command and the flags applied.
fn from_flags(root: &StateRoot, args: &ExecArgs) -> Result<Process> {
    if args.command.is_empty() {
        bail!("exec: give a command, or --process");
    }
    let container = root.load(&args.id)?;
    let stored = container
        .stored
        .as_ref()
        .with_context(|| format!("container {:?} is still being created", args.id))?;
    let mut p = stored
        .config
        .process()
        .clone()
        .context("the container's config has no process")?;
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    p.set_console_size(None);
    if let Some(cwd) = &args.cwd {
        p.set_cwd(PathBuf::from(cwd));
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &args.env {
        let Some((key, _)) = kv.split_once('=') else {
            bail!("--env {kv:?} is not KEY=value")
        };
        env.retain(|e| !e.starts_with(&format!("{key}=")));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(user) = &args.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let parse = |s: &str| {
            s.parse::<u32>()
                .with_context(|| format!("--user {user:?}: only numeric uid[:gid] is supported"))
        };
        p.user_mut().set_uid(parse(uid)?);
        p.user_mut().set_gid(parse(gid)?);
    }
    if !args.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(args.additional_gids.clone()));
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &args.cap {
            let cap: Capability = serde_json::from_value(serde_json::json!(name))
                .with_context(|| format!("--cap {name:?} is not a capability"))?;
            let add = |set: Option<Capabilities>| {
                let mut set = set.unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding().clone()));
            caps.set_effective(add(caps.effective().clone()));
            caps.set_permitted(add(caps.permitted().clone()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}
