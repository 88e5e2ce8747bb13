//! The devices controller on cgroup v2: no files, but an eBPF program attached to the
//! cgroup that the kernel asks about every device access (`BPF_PROG_TYPE_CGROUP_DEVICE`).
//!
//! The config's rules are first reduced the way cgroup v1's devices files treat them
//! ([`rules`]), so a config means the same on both versions; the result is compiled into
//! a short program ([`program`]) and attached, replacing the one attached before ([`bpf`]).

mod bpf;
mod program;
mod rules;

pub use rules::{Access, DeviceKind, DeviceRule, RuleSet};

use std::path::Path;

use crate::error::{Error, Result};

/// Compile `rules` and make the program the only device filter of cgroup `dir` (a cgroup2
/// directory). A program attached by an earlier call is replaced, with no moment unfiltered.
pub fn attach_filter(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let set = RuleSet::from_rules(rules);
    let insns = program::compile(&set);
    let cgroup = std::fs::File::open(dir).map_err(|e| Error::io("open cgroup", dir, e))?;
    let old = bpf::attached_device_programs(&cgroup)
        .map_err(|e| Error::io("query device programs of", dir, e))?;
    let prog = bpf::load_device_program(&insns)
        .map_err(|e| Error::io("load device program for", dir, e))?;
    bpf::attach_device_program(&cgroup, &prog)
        .map_err(|e| Error::io("attach device program to", dir, e))?;
    for old in old {
        bpf::detach_device_program(&cgroup, &old)
            .map_err(|e| Error::io("detach old device program from", dir, e))?;
    }
    Ok(())
}

/// How many device programs are attached to cgroup `dir`.
pub fn attached_filters(dir: &Path) -> Result<usize> {
    let cgroup = std::fs::File::open(dir).map_err(|e| Error::io("open cgroup", dir, e))?;
    bpf::attached_device_programs(&cgroup)
        .map(|p| p.len())
        .map_err(|e| Error::io("query device programs of", dir, e))
}
