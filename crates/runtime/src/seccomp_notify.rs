//! seccomp notify (SCMP_ACT_NOTIFY): the filter's listener goes to the agent listening on
//! `linux.seccomp.listenerPath`, with the container process state of the runtime-spec
//! ("The Container Process State"): one message of JSON with the descriptor attached
//! (SCM_RIGHTS), sent by the runtime once init (or an exec'd process) loaded the filter.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::state::SpecState;

/// The name of the listener in the state's `fds` (runtime-spec's `seccompFd`).
const SECCOMP_FD_NAME: &str = "seccompFd";

/// The syscall that carries the listener from init to the runtime: a notify rule on it
/// would leave init waiting for an agent that can only get the listener through it (runc
/// refuses `write` for the same reason; berth's channel uses sendmsg).
const HAND_OVER_SYSCALL: &str = "sendmsg";

/// Whether `config` has notify rules, after checking that they can work. Errors name the
/// field and the value.
pub(crate) fn check(config: &LinuxSeccomp) -> Result<bool> {
    let invalid = |what: String| Error::InvalidConfig(format!("linux.seccomp: {what}"));
    if config.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(invalid(
            "defaultAction SCMP_ACT_NOTIFY: notify cannot be the default action (runc refuses it too)".into(),
        ));
    }
    let mut notifies = false;
    for (i, rule) in config.syscalls().iter().flatten().enumerate() {
        if rule.action() != LinuxSeccompAction::ScmpActNotify {
            continue;
        }
        notifies = true;
        if rule.names().iter().any(|n| n == HAND_OVER_SYSCALL) {
            return Err(invalid(format!(
                "syscalls[{i}]: SCMP_ACT_NOTIFY on {HAND_OVER_SYSCALL:?}: the container's \
                 init hands the notify listener over with {HAND_OVER_SYSCALL}, so it cannot \
                 itself be notified"
            )));
        }
    }
    if notifies
        && config
            .listener_path()
            .as_ref()
            .is_none_or(|p| p.as_os_str().is_empty())
    {
        return Err(invalid(
            "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath, the agent's socket".into(),
        ));
    }
    Ok(notifies)
}

/// runtime-spec's container process state.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerProcessState<'a> {
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    state: &'a SpecState,
}

/// Runtime side: send `listener`, the notify listener of process `pid`, to the agent at
/// `config.listenerPath`. `state` is the container's (`creating` during create, `running`
/// for exec, as runc reports).
pub(crate) fn send_to_agent(
    config: &LinuxSeccomp,
    state: &SpecState,
    pid: i32,
    listener: BorrowedFd<'_>,
) -> Result<()> {
    let path = config.listener_path().as_deref().unwrap_or(Path::new(""));
    let field = || {
        format!(
            "linux.seccomp.listenerPath {:?}",
            path.display().to_string()
        )
    };
    let message = ContainerProcessState {
        oci_version: crate::spec::OCI_VERSION,
        fds: [SECCOMP_FD_NAME],
        pid,
        metadata: config.listener_metadata().as_deref().unwrap_or_default(),
        state,
    };
    let bytes = serde_json::to_vec(&message)
        .map_err(|e| Error::Init(format!("encode the container process state: {e}")))?;
    let agent = UnixStream::connect(path)
        .map_err(|e| Error::Init(format!("{}: connect to the seccomp agent: {e}", field())))?;
    let fds = [listener.as_raw_fd()];
    sendmsg::<()>(
        agent.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| Error::Init(format!("{}: send the seccomp listener: {e}", field())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(value).expect("seccomp")
    }

    #[test]
    fn notify_rules_need_a_listener_path_and_spare_sendmsg() {
        let rule =
            |names: &[&str]| serde_json::json!([{"names": names, "action": "SCMP_ACT_NOTIFY"}]);
        let ok = config(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock", "syscalls": rule(&["mkdir"])}));
        assert!(check(&ok).expect("valid"));
        let plain = config(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock"}));
        assert!(!check(&plain).expect("valid"));
        for (bad, needle) in [
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rule(&["mkdir"])}),
                "listenerPath",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
                    "syscalls": rule(&["mkdir", "sendmsg"])}),
                "syscalls[0]: SCMP_ACT_NOTIFY on \"sendmsg\"",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}),
                "defaultAction SCMP_ACT_NOTIFY",
            ),
        ] {
            let err = check(&config(bad)).expect_err("refused").to_string();
            assert!(err.contains(needle), "{needle:?} not in {err:?}");
        }
    }

    #[test]
    fn the_process_state_has_the_spec_shape() {
        let state = SpecState {
            oci_version: "1.2.0".into(),
            id: "c1".into(),
            status: crate::state::Status::Creating,
            pid: Some(42),
            bundle: "/b".into(),
            annotations: Default::default(),
        };
        let message = ContainerProcessState {
            oci_version: "1.2.0",
            fds: [SECCOMP_FD_NAME],
            pid: 42,
            metadata: "m",
            state: &state,
        };
        let json = serde_json::to_value(&message).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": 42,
                "metadata": "m", "state": {"ociVersion": "1.2.0", "id": "c1",
                "status": "creating", "pid": 42, "bundle": "/b"}})
        );
    }
}
