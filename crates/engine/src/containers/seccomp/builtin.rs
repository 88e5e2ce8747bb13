//! berth's built-in default profile, for machines without a profile file (berthd's
//! `--seccomp-profile builtin`, and its fallback). Docker's format, so it goes through the
//! same arch/capability selection as a file would.
//!
//! It is a deny list, where Docker's own is an allow list: every syscall is allowed except
//! those that reach state the kernel does not namespace (modules, kexec, keyrings, clocks,
//! swap, accounting), that open ways around the other defences (new namespaces, mounts,
//! ptrace of others, BPF, perf, userfaultfd, io_uring), or that only old or unused ABIs need.
//! Keyrings, kexec, io_uring and the old ABIs are always denied; the others come back with
//! the capability that governs them, as in Docker's profile.
//! A syscall newer than this list is allowed: a profile file stays the stricter choice.

use serde_json::{json, Value};

/// Denied whatever the container's capabilities.
const ALWAYS_DENIED: &[&str] = &[
    "add_key",
    "keyctl",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "nfsservctl",
    "uselib",
    "_sysctl",
    "sysfs",
    "ustat",
    "vm86",
    "vm86old",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
];

/// Denied unless the container holds the capability.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "unshare",
            "setns",
            "quotactl",
            "quotactl_fd",
            "lookup_dcookie",
            "fanotify_init",
            "sethostname",
            "setdomainname",
            "swapon",
            "swapoff",
        ],
    ),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "process_madvise",
            "kcmp",
            "pidfd_getfd",
            "userfaultfd",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "mbind",
            "set_mempolicy",
            "get_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// clone's namespace flags (its first argument on x86 and arm): without CAP_SYS_ADMIN a
/// process may not make new namespaces, user namespaces included.
const NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

const EPERM: i64 = 1;
/// clone3 passes its flags in memory a filter cannot read: without CAP_SYS_ADMIN it fails
/// with ENOSYS, on which libcs fall back to clone, whose flags are checked.
const ENOSYS: i64 = 38;

fn deny(names: &[&str], errno: i64) -> Value {
    json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno})
}

fn unless_cap(mut rule: Value, cap: &str) -> Value {
    rule["excludes"] = json!({"caps": [cap]});
    rule
}

/// The built-in profile, in Docker's format.
pub fn profile() -> Value {
    let mut syscalls = vec![deny(ALWAYS_DENIED, EPERM)];
    for (cap, names) in BY_CAPABILITY {
        syscalls.push(unless_cap(deny(names, EPERM), cap));
    }
    for flag in NAMESPACE_FLAGS {
        let mut rule = deny(&["clone"], EPERM);
        rule["args"] =
            json!([{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}]);
        rule["includes"] = json!({"arches": ["amd64", "386", "arm64", "arm"]});
        syscalls.push(unless_cap(rule, "CAP_SYS_ADMIN"));
    }
    syscalls.push(unless_cap(deny(&["clone3"], ENOSYS), "CAP_SYS_ADMIN"));
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": syscalls,
    })
}
