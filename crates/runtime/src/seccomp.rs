//! linux.seccomp: built into a libseccomp filter during create (so a bad profile fails
//! there), loaded as the very last step before exec.
//!
//! Unknown syscall names: runc skips them, because profiles name syscalls that an older
//! libseccomp or kernel does not know. Skipping is only safe where it cannot weaken the
//! policy: a name in an allowing rule (the syscall stays at the stricter default). A name
//! in any other rule would drop a restriction, so it is an error naming the syscall.

use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

use crate::error::{Error, Result};

/// A built filter, ready to load.
pub(crate) struct Filter(ScmpFilterContext);

fn invalid(what: String) -> Error {
    Error::InvalidConfig(format!("linux.seccomp: {what}"))
}

/// The serde name of an oci-spec enum value ("SCMP_ACT_ERRNO", "SCMP_ARCH_X86_64"...).
fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    let errno = errno.map_or(libc::EPERM, |e| e as i32);
    Ok(match name_of(&a).as_str() {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno),
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno as u16),
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        other => {
            return Err(Error::Unsupported {
                field: format!("linux.seccomp action {other}"),
                why: "not implemented by berth-runtime (no seccomp notify listener)".into(),
            })
        }
    })
}

fn args(rule: &LinuxSyscall) -> Result<Vec<ScmpArgCompare>> {
    let mut out = Vec::new();
    for a in rule.args().iter().flatten() {
        let op_name = name_of(&a.op());
        let op = ScmpCompareOp::from_str(&op_name)
            .map_err(|_| invalid(format!("unknown operator {op_name}")))?;
        let index = u32::try_from(a.index())
            .map_err(|_| invalid(format!("argument index {}", a.index())))?;
        if index > 5 {
            return Err(invalid(format!("argument index {index} is above 5")));
        }
        out.push(match op {
            // value is the mask, valueTwo the datum (runc's reading of the spec).
            ScmpCompareOp::MaskedEqual(_) => ScmpArgCompare::new(
                index,
                ScmpCompareOp::MaskedEqual(a.value()),
                a.value_two().unwrap_or(0),
            ),
            op => ScmpArgCompare::new(index, op, a.value()),
        });
    }
    Ok(out)
}

/// Build the filter for `config`.
pub(crate) fn build(config: &LinuxSeccomp) -> Result<Filter> {
    if config.listener_path().is_some() {
        return Err(Error::Unsupported {
            field: "linux.seccomp.listenerPath".into(),
            why: "seccomp notify is not implemented by berth-runtime".into(),
        });
    }
    let default = action(config.default_action(), config.default_errno_ret())?;
    let mut filter =
        ScmpFilterContext::new(default).map_err(|e| invalid(format!("create filter: {e}")))?;
    // no_new_privs is the config's business (process.noNewPrivileges), not libseccomp's.
    filter
        .set_ctl_nnp(false)
        .map_err(|e| invalid(format!("{e}")))?;
    for arch in config.architectures().iter().flatten() {
        let name = name_of(arch);
        let arch = ScmpArch::from_str(&name)
            .map_err(|_| invalid(format!("unknown architecture {name}")))?;
        filter
            .add_arch(arch)
            .map_err(|e| invalid(format!("add architecture {name}: {e}")))?;
    }
    for flag in config.flags().iter().flatten() {
        let name = name_of(flag);
        let set = match name.as_str() {
            "SECCOMP_FILTER_FLAG_LOG" => filter.set_ctl_log(true).map(drop),
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => filter.set_ctl_ssb(true).map(drop),
            "SECCOMP_FILTER_FLAG_TSYNC" => filter.set_ctl_tsync(true).map(drop),
            other => return Err(invalid(format!("unknown flag {other}"))),
        };
        set.map_err(|e| invalid(format!("flag {name}: {e}")))?;
    }
    for rule in config.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            // libseccomp refuses a rule that repeats the default action; it changes nothing.
            continue;
        }
        let conditions = args(rule)?;
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                if act == ScmpAction::Allow {
                    tracing::debug!("seccomp: skipping syscall {name:?}, unknown to libseccomp");
                    continue;
                }
                return Err(invalid(format!(
                    "unknown syscall {name:?} in a rule that restricts it"
                )));
            };
            filter
                .add_rule_conditional(act, syscall, &conditions)
                .map_err(|e| invalid(format!("rule for {name}: {e}")))?;
        }
    }
    Ok(Filter(filter))
}

/// Build the filter of `config` and load it now if it must be (see [`Pending`]).
pub(crate) fn prepare(config: Option<&LinuxSeccomp>, no_new_privs: bool) -> Result<Pending> {
    let Some(config) = config else {
        return Ok(Pending(None));
    };
    let filter = build(config)?;
    if no_new_privs {
        return Ok(Pending(Some(filter)));
    }
    // Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: load it while
    // still privileged, as runc does; the rest of the setup must then pass the profile.
    filter.load()?;
    Ok(Pending(None))
}

/// A filter to load as the very last step before exec (with no_new_privs), or nothing.
pub(crate) struct Pending(Option<Filter>);

impl Pending {
    pub(crate) fn load(&self) -> Result<()> {
        match &self.0 {
            Some(f) => f.load(),
            None => Ok(()),
        }
    }
}

impl Filter {
    pub(crate) fn load(&self) -> Result<()> {
        self.0
            .load()
            .map_err(|e| Error::Init(format!("load seccomp filter: {e}")))
    }
}
