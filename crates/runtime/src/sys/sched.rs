//! Scheduling, I/O priority, execution domain, NUMA memory policy and CPU affinity of the
//! calling process: the syscalls libc has no wrapper for, and the mask-based ones with
//! masks of any size (nix's CpuSet stops at 1024 CPUs).

use nix::errno::Errno;

/// `struct sched_attr` of sched_setattr(2), with the utilization clamps (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_setattr(2) on the calling thread.
pub fn set_sched_attr(attr: &SchedAttr) -> nix::Result<()> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a valid sched_attr for the duration of the call; the kernel only
    // reads `size` bytes of it.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    Errno::result(rc).map(drop)
}

/// IOPRIO_WHO_PGRP of linux/ioprio.h.
const IOPRIO_WHO_PGRP: libc::c_int = 2;

/// ioprio_set(2) for the caller's process group, `value` = class << 13 | level.
pub fn set_io_priority_of_group(value: u16) -> nix::Result<()> {
    // SAFETY: integer arguments only; who = 0 is the caller's process group.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PGRP,
            0,
            libc::c_int::from(value),
        )
    };
    Errno::result(rc).map(drop)
}

/// personality(2): set the execution domain, keeping nothing of the previous persona.
pub fn set_personality(persona: libc::c_ulong) -> nix::Result<()> {
    // SAFETY: integer argument only.
    let rc = unsafe { libc::personality(persona) };
    Errno::result(rc).map(drop)
}

/// set_mempolicy(2) with `mode` (flags included) and a node mask of 64-bit words.
pub fn set_memory_policy(mode: libc::c_int, nodes: &[u64]) -> nix::Result<()> {
    let ptr = match nodes.is_empty() {
        true => std::ptr::null(),
        false => nodes.as_ptr(),
    };
    // The kernel reads maxnode - 1 bits (a historical off-by-one that libnuma also feeds).
    let maxnode = nodes.len() * 64 + 1;
    // SAFETY: `nodes` is valid for `maxnode - 1` bits during the call, or null when empty.
    let rc = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    Errno::result(rc).map(drop)
}

/// sched_setaffinity(2) of the calling thread (and so of the children it forks).
pub fn set_cpu_affinity(cpus: &[u64]) -> nix::Result<()> {
    // SAFETY: `cpus` is valid for its size in bytes during the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            0,
            std::mem::size_of_val(cpus),
            cpus.as_ptr(),
        )
    };
    Errno::result(rc).map(drop)
}
