//! linux.seccomp: compiled to a BPF program by the runtime before it forks (so a bad
//! profile fails there), loaded by the container's init as the very last step before exec.
//!
//! Compiling Docker's ~350-syscall profile for three architectures costs more than the rest
//! of a container start, so programs are cached by a hash of the profile and the libseccomp
//! version in the state root (root-only, like the state itself).
//!
//! Unknown syscall names: runc skips them, because profiles name syscalls that an older
//! libseccomp or kernel does not know. Skipping is only safe where it cannot weaken the
//! policy: a name in an allowing rule (the syscall stays at the stricter default). A name
//! in any other rule would drop a restriction, so it is an error naming the syscall.
//!
//! SCMP_ACT_NOTIFY: the filter is loaded with a notify listener, which init hands to the
//! runtime during `create` and the runtime to `listenerPath` (see `seccomp_notify`).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

use crate::error::{Error, Result};
use crate::sync::{Channel, ChildMsg};

/// A compiled filter: the classic BPF program and the seccomp(2) flags to load it with.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    filter: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

/// The seccomp(2) flag that makes the load return a notify listener.
const NEW_LISTENER: libc::c_ulong = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;

/// The size of one BPF instruction as libseccomp exports it (native endian sock_filter).
const INSN_SIZE: usize = std::mem::size_of::<libc::sock_filter>();

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
        "SCMP_ACT_NOTIFY" => ScmpAction::Notify,
        other => {
            return Err(Error::Unsupported {
                field: format!("linux.seccomp action {other}"),
                why: "not implemented by berth-runtime".into(),
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

/// Build the libseccomp filter for `config`.
fn build(config: &LinuxSeccomp) -> Result<ScmpFilterContext> {
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
    load_flags(config)?;
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
    Ok(filter)
}

/// seccomp(2) flags for the config's `flags` (the program is loaded by us, not libseccomp),
/// and for a notify listener when a rule asks for one.
fn load_flags(config: &LinuxSeccomp) -> Result<libc::c_ulong> {
    let mut flags = 0;
    for flag in config.flags().iter().flatten() {
        flags |= match name_of(flag).as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => libc::SECCOMP_FILTER_FLAG_TSYNC,
            "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            other => return Err(invalid(format!("unknown flag {other}"))),
        };
    }
    if crate::seccomp_notify::check(config)? {
        flags |= NEW_LISTENER;
        // TSYNC reports a thread it could not sync by its id, which is also what a new
        // listener's descriptor is returned as: the kernel wants them told apart.
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    Ok(flags)
}

/// A cached program is stored followed by its SHA-256, so a damaged file is recompiled
/// instead of loaded.
fn with_checksum(program: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut out = program.to_vec();
    out.extend_from_slice(&sha2::Sha256::digest(program));
    out
}

fn verified(stored: &[u8]) -> Option<&[u8]> {
    use sha2::Digest;
    let (program, sum) = stored.split_at_checked(stored.len().checked_sub(32)?)?;
    (sha2::Sha256::digest(program).as_slice() == sum).then_some(program)
}

/// The cache key: the profile as parsed, and what compiles it.
fn cache_key(config: &LinuxSeccomp) -> Result<String> {
    use sha2::Digest;
    let profile = serde_json::to_vec(config).map_err(|e| invalid(format!("serialize: {e}")))?;
    let v = libseccomp::ScmpVersion::current().map_err(|e| invalid(format!("{e}")))?;
    let mut hash = sha2::Sha256::new();
    hash.update(format!(
        "berth-seccomp-1 libseccomp {}.{}.{} {}\n",
        v.major,
        v.minor,
        v.micro,
        std::env::consts::ARCH
    ));
    hash.update(&profile);
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn from_bytes(bytes: &[u8], flags: libc::c_ulong) -> Option<Program> {
    if bytes.is_empty()
        || bytes.len() % INSN_SIZE != 0
        || bytes.len() / INSN_SIZE > u16::MAX as usize
    {
        return None;
    }
    let filter = bytes
        .chunks_exact(INSN_SIZE)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some(Program { filter, flags })
}

impl Program {
    /// Compile `config`, or take its program from `cache_dir` (a directory only root can
    /// write). The cache is an optimisation: failing to read or write it is not an error.
    pub(crate) fn compile(config: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Program> {
        let flags = load_flags(config)?;
        let cached = match cache_dir {
            Some(dir) => Some(dir.join(cache_key(config)?)),
            None => None,
        };
        if let Some(path) = &cached {
            let stored = std::fs::read(path).ok();
            if let Some(p) = stored
                .as_deref()
                .and_then(verified)
                .and_then(|b| from_bytes(b, flags))
            {
                return Ok(p);
            }
        }
        let bytes = export(&build(config)?)?;
        let program = from_bytes(&bytes, flags).ok_or_else(|| {
            invalid(format!(
                "compiled to {} bytes, not a BPF program",
                bytes.len()
            ))
        })?;
        if let Some(path) = &cached {
            if let Err(e) = store(path, &with_checksum(&bytes)) {
                tracing::debug!("seccomp cache {}: {e}", path.display());
            }
        }
        Ok(program)
    }

    /// Install the filter on the calling thread (all threads with TSYNC). Returns its notify
    /// listener if it has SCMP_ACT_NOTIFY rules.
    pub(crate) fn load(&self) -> Result<Option<OwnedFd>> {
        crate::sys::proc::seccomp_set_filter(self.flags, &self.filter)
            .map_err(|e| Error::Init(format!("load seccomp filter: {e}")))
    }

    /// Whether loading the filter creates a notify listener.
    fn notifies(&self) -> bool {
        self.flags & NEW_LISTENER != 0
    }
}

/// The BPF program of `filter` (libseccomp 2.5 exports only to a descriptor).
fn export(filter: &ScmpFilterContext) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let fail = |e: &dyn std::fmt::Display| invalid(format!("compile: {e}"));
    let mut file = std::fs::File::from(
        nix::sys::memfd::memfd_create(c"berth-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| fail(&e))?,
    );
    filter.export_bpf(&file).map_err(|e| fail(&e))?;
    let mut bytes = Vec::new();
    file.rewind().map_err(|e| fail(&e))?;
    file.read_to_end(&mut bytes).map_err(|e| fail(&e))?;
    Ok(bytes)
}

/// Write `bytes` to `path` atomically: a reader sees the whole program or none.
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = path.parent().ok_or(std::io::ErrorKind::InvalidInput)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The program to load now if it must be (see [`Pending`]). A listener it creates goes to
/// the runtime at once over `channel`, before anything else can run into a notify rule.
pub(crate) fn prepare(
    program: Option<&Program>,
    no_new_privs: bool,
    channel: &Channel,
) -> Result<Pending> {
    let Some(program) = program else {
        return Ok(Pending(None));
    };
    if no_new_privs {
        return Ok(Pending(Some(program.clone())));
    }
    // Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: load it while
    // still privileged, as runc does. Only the identity change (setgroups, setres[ug]id,
    // capset, prctl), the exec barrier and the exec then run under the profile: the
    // runtime's own steps (descriptors, cwd) came before (`process::before_filter`).
    hand_over(program.load()?, channel)?;
    Ok(Pending(None))
}

/// Give the filter's notify listener, if any, to the runtime.
fn hand_over(listener: Option<OwnedFd>, channel: &Channel) -> Result<()> {
    match listener {
        Some(fd) => channel.send_with_fd(&ChildMsg::SeccompListener, fd.as_fd()),
        None => Ok(()),
    }
}

/// A filter to load as the very last step before exec (with no_new_privs), or nothing.
pub(crate) struct Pending(Option<Program>);

impl Pending {
    /// Once no_new_privs is set, before the process reports ready: a filter with notify
    /// rules is loaded here rather than last, so that its listener reaches the runtime while
    /// `create` (or `exec`) still waits, as runc does.
    pub(crate) fn load_listener(&mut self, channel: &Channel) -> Result<()> {
        if let Some(program) = self.0.take_if(|p| p.notifies()) {
            hand_over(program.load()?, channel)?;
        }
        Ok(())
    }

    pub(crate) fn load(&self) -> Result<()> {
        match &self.0 {
            Some(p) => p.load().map(drop),
            None => Ok(()),
        }
    }
}
