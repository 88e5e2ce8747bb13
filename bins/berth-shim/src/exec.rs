//! Processes exec'd into the running container: the runtime's `exec --detach`, so the
//! process is reparented to the shim (a subreaper), which reaps it and reports its status.

use std::os::unix::net::UnixListener;

use anyhow::{bail, Context, Result};

use crate::runtime::{read_pid, Runtime};
use crate::stdio::Plumbing;

/// One exec'd process and the client that streams it.
pub struct Exec {
    pub pid: i32,
    pub stdio: Plumbing,
    pub client: u64,
}

/// Start `process` (a runtime-spec process) in the container; its pid and descriptors.
pub fn spawn(
    runtime: &Runtime,
    id: &str,
    process: &serde_json::Value,
    stdin: bool,
) -> Result<(i32, Plumbing)> {
    // The id names files in the bundle.
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("invalid exec id {id:?}");
    }
    let spec = format!("exec-{id}.json");
    let pid_file = format!("exec-{id}.pid");
    std::fs::write(&spec, serde_json::to_vec(process)?).context("write the exec's process")?;
    let mut cmd = runtime.command();
    cmd.args([
        "exec",
        "--detach",
        "--process",
        &spec,
        "--pid-file",
        &pid_file,
    ]);
    let plumbing = if process["terminal"].as_bool() == Some(true) {
        let socket = format!("exec-{id}.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).context("bind the console socket")?;
        cmd.arg("--console-socket").arg(&socket).arg(&runtime.id);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let ran = runtime.run(cmd, "exec");
        let _ = std::fs::remove_file(&socket);
        ran.and_then(|()| Plumbing::terminal(&listener))
    } else {
        let mut plumbing = Plumbing::pipes(stdin)?;
        cmd.arg(&runtime.id);
        plumbing.give(&mut cmd);
        runtime.run(cmd, "exec").map(|()| plumbing)
    };
    let pid = plumbing.and_then(|p| Ok((read_pid(std::path::Path::new(&pid_file))?, p)));
    let _ = std::fs::remove_file(&spec);
    let _ = std::fs::remove_file(&pid_file);
    pid
}
