//! Kernel attributes of the container's process that survive its exec: the scheduling
//! policy (process.scheduler), the I/O priority (process.ioPriority), the execution domain
//! (linux.personality) and the NUMA memory policy (linux.memoryPolicy). Applied as root,
//! before the identity change (raising priorities needs CAP_SYS_NICE or CAP_SYS_ADMIN) and
//! before the seccomp filter (a profile may deny these syscalls), in runc's order. A config
//! without them costs nothing here.

use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality,
    LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType,
    MemoryPolicyModeType, Process, Scheduler,
};

use super::id_list;
use crate::error::{Error, Result};
use crate::sys::sched::{self, SchedAttr};

/// What to apply to one process, borrowed from its config.
#[derive(Default)]
pub(crate) struct Attributes<'a> {
    scheduler: Option<&'a Scheduler>,
    io_priority: Option<LinuxIOPriority>,
    personality: Option<&'a LinuxPersonality>,
    memory_policy: Option<&'a LinuxMemoryPolicy>,
}

impl<'a> Attributes<'a> {
    /// The container's init: its process and the linux section of the config.
    pub fn of(process: &'a Process, linux: Option<&'a Linux>) -> Self {
        Attributes {
            scheduler: process.scheduler().as_ref(),
            io_priority: *process.io_priority(),
            personality: linux.and_then(|l| l.personality().as_ref()),
            memory_policy: linux.and_then(|l| l.memory_policy().as_ref()),
        }
    }

    /// A process exec'd into the container: its own scheduler and I/O priority (see
    /// [`inherit_for_exec`]) and the container's personality and memory policy.
    pub fn for_exec(
        process: &'a Process,
        personality: Option<&'a LinuxPersonality>,
        memory_policy: Option<&'a LinuxMemoryPolicy>,
    ) -> Self {
        Attributes {
            personality,
            memory_policy,
            ..Attributes::of(process, None)
        }
    }

    /// Check every value before anything is created (also done at create by validate).
    pub fn check(&self) -> Result<()> {
        if let Some(s) = self.scheduler {
            sched_attr(s)?;
        }
        if let Some(p) = &self.io_priority {
            io_priority(p)?;
        }
        if let Some(p) = self.personality {
            persona(p)?;
        }
        if let Some(m) = self.memory_policy {
            memory_policy(m)?;
        }
        Ok(())
    }

    /// Apply to the calling process.
    pub fn apply(&self) -> Result<()> {
        if let Some(s) = self.scheduler {
            let attr = sched_attr(s)?;
            sched::set_sched_attr(&attr).map_err(|e| {
                let hint = match (e, s.policy()) {
                    (nix::errno::Errno::EPERM, LinuxSchedulerPolicy::SchedDeadline) => {
                        " (SCHED_DEADLINE needs the process's CPUs to be a whole root domain: no cpuset narrower than the host's)"
                    }
                    (
                        nix::errno::Errno::EPERM,
                        LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr,
                    ) => {
                        " (real-time policies need CAP_SYS_NICE in the host's user namespace, and with real-time group scheduling a cgroup v1 cpu controller grants real-time time only through linux.resources.cpu.realtimeRuntime)"
                    }
                    (nix::errno::Errno::EPERM, _) => {
                        " (a negative nice value needs CAP_SYS_NICE in the host's user namespace)"
                    }
                    _ => "",
                };
                Error::sys(
                    format!(
                        "process.scheduler: sched_setattr {} priority {} nice {} flags {:#x}{hint}",
                        s.policy(),
                        attr.priority,
                        attr.nice,
                        attr.flags
                    ),
                    e,
                )
            })?;
        }
        if let Some(p) = &self.io_priority {
            sched::set_io_priority_of_group(io_priority(p)?).map_err(|e| {
                Error::sys(
                    format!(
                        "process.ioPriority: ioprio_set {} {}",
                        p.class(),
                        p.priority()
                    ),
                    e,
                )
            })?;
        }
        if let Some(p) = self.personality {
            sched::set_personality(persona(p)?).map_err(|e| {
                Error::sys(format!("linux.personality: personality {}", p.domain()), e)
            })?;
        }
        if let Some(m) = self.memory_policy {
            let (mode, nodes) = memory_policy(m)?;
            sched::set_memory_policy(mode, &nodes).map_err(|e| {
                Error::sys(
                    format!(
                        "linux.memoryPolicy: set_mempolicy {} nodes {:?}",
                        m.mode(),
                        m.nodes().as_deref().unwrap_or_default()
                    ),
                    e,
                )
            })?;
        }
        Ok(())
    }
}

/// runc's rule for an exec'd process: the scheduler, I/O priority and execCPUAffinity it
/// does not set itself are the container's.
pub(crate) fn inherit_for_exec(process: &mut Process, container: Option<&Process>) {
    let Some(theirs) = container else {
        return;
    };
    if process.scheduler().is_none() {
        process.set_scheduler(theirs.scheduler().clone());
    }
    if process.io_priority().is_none() {
        process.set_io_priority(*theirs.io_priority());
    }
    if process.exec_cpu_affinity().is_none() {
        process.set_exec_cpu_affinity(theirs.exec_cpu_affinity().clone());
    }
}

/// process.ioPriority as ioprio_set's value: class << 13 | level (linux/ioprio.h).
fn io_priority(p: &LinuxIOPriority) -> Result<u16> {
    let level = p.priority();
    if !(0..=7).contains(&level) {
        return Err(Error::config(format!(
            "process.ioPriority.priority {level}: must be 0 (highest) to 7 (lowest)"
        )));
    }
    let class: u16 = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    Ok(class << 13 | level as u16)
}

/// process.scheduler as sched_setattr's argument, with runc's checks of which fields a
/// policy takes (the kernel would refuse them with a bare EINVAL).
fn sched_attr(s: &Scheduler) -> Result<SchedAttr> {
    use LinuxSchedulerPolicy as P;
    let policy = *s.policy();
    let bad = |what: String| Err(Error::config(format!("process.scheduler: {what}")));
    let nice = s.nice().unwrap_or(0);
    let priority = s.priority().unwrap_or(0);
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if !(-20..=19).contains(&nice) {
        return bad(format!("nice {nice} is outside -20..19"));
    }
    match policy {
        P::SchedFifo | P::SchedRr if !(1..=99).contains(&priority) => {
            return bad(format!("priority {priority}: {policy} needs 1 to 99"));
        }
        P::SchedFifo | P::SchedRr => {}
        _ if priority != 0 => {
            return bad(format!(
                "priority {priority}: only SCHED_FIFO and SCHED_RR take a priority, not {policy}"
            ));
        }
        _ => {}
    }
    if policy != P::SchedDeadline && (runtime, deadline, period) != (0, 0, 0) {
        return bad(format!(
            "runtime/deadline/period {runtime}/{deadline}/{period}: only SCHED_DEADLINE takes them, not {policy}"
        ));
    }
    let flags = s.flags().iter().flatten().fold(0u64, |acc, f| {
        acc | match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    Ok(SchedAttr {
        policy: match policy {
            P::SchedOther => 0,
            P::SchedFifo => 1,
            P::SchedRr => 2,
            P::SchedBatch => 3,
            P::SchedIso => 4,
            P::SchedIdle => 5,
            P::SchedDeadline => 6,
        },
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
        ..SchedAttr::default()
    })
}

/// linux.personality as personality(2)'s argument (PER_LINUX, PER_LINUX32). runtime-spec
/// defines no flags yet; runc ignores any with a warning, berth refuses them by name.
fn persona(p: &LinuxPersonality) -> Result<libc::c_ulong> {
    if let Some(flags) = p.flags().as_ref().filter(|f| !f.is_empty()) {
        return Err(Error::Unsupported {
            field: format!("linux.personality.flags {flags:?}"),
            why: "runtime-spec defines no personality flags".into(),
        });
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    })
}

/// linux.memoryPolicy as set_mempolicy's mode (flags or'd in) and node mask, with the
/// number of nodes each mode takes checked.
fn memory_policy(m: &LinuxMemoryPolicy) -> Result<(libc::c_int, Vec<u64>)> {
    use MemoryPolicyModeType as M;
    let list = m.nodes().as_deref().unwrap_or_default();
    let nodes = id_list::parse(list)
        .map_err(|e| Error::config(format!("linux.memoryPolicy.nodes {list:?}: {e}")))?;
    let count = id_list::ids(&nodes).count();
    let (mode, wants) = match m.mode() {
        M::MpolDefault => (0, Some(false)),
        M::MpolPreferred => (1, None),
        M::MpolBind => (2, Some(true)),
        M::MpolInterleave => (3, Some(true)),
        M::MpolLocal => (4, Some(false)),
        M::MpolPreferredMany => (5, Some(true)),
        M::MpolWeightedInterleave => (6, Some(true)),
    };
    match wants {
        Some(true) if count == 0 => {
            return Err(Error::config(format!(
                "linux.memoryPolicy: mode {} needs at least one node in nodes",
                m.mode()
            )))
        }
        Some(false) if count > 0 => {
            return Err(Error::config(format!(
                "linux.memoryPolicy.nodes {list:?}: mode {} takes no nodes",
                m.mode()
            )))
        }
        _ => {}
    }
    let flags = m.flags().iter().flatten().fold(0, |acc, f| {
        acc | match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        }
    });
    Ok((mode | flags, nodes))
}

/// Host nodes the memory policy names that the host does not have online (so the error
/// names the node rather than the kernel's EINVAL). Relative node numbers are exempt: they
/// are positions in the allowed set, not node numbers.
pub(crate) fn check_nodes_exist(m: &LinuxMemoryPolicy, online: &str) -> Result<()> {
    let relative = m
        .flags()
        .iter()
        .flatten()
        .any(|f| *f == MemoryPolicyFlagType::MpolFRelativeNodes);
    if relative {
        return Ok(());
    }
    let (_, nodes) = memory_policy(m)?;
    let online = id_list::parse(online.trim()).unwrap_or_default();
    let has = |n: usize| online.get(n / 64).is_some_and(|w| w & (1 << (n % 64)) != 0);
    let missing = id_list::ids(&nodes).find(|n| !has(*n));
    match missing {
        Some(n) => Err(Error::config(format!(
            "linux.memoryPolicy.nodes {:?}: this host has no memory node {n} (online: {})",
            m.nodes().as_deref().unwrap_or_default(),
            online_text(&online)
        ))),
        None => Ok(()),
    }
}

fn online_text(mask: &[u64]) -> String {
    let ids: Vec<String> = id_list::ids(mask).map(|n| n.to_string()).collect();
    ids.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduler(v: serde_json::Value) -> Scheduler {
        let process = serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}, "scheduler": v});
        let text = serde_json::to_vec(&process).expect("json");
        let process = crate::spec::parse_process(&text).expect("process");
        process.scheduler().clone().expect("scheduler")
    }

    #[test]
    fn scheduler_fields_follow_the_policy() {
        let attr = sched_attr(&scheduler(
            serde_json::json!({"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}),
        ))
        .expect("fifo");
        assert_eq!((attr.policy, attr.priority, attr.flags), (1, 10, 1));
        let err = |v| sched_attr(&scheduler(v)).expect_err("refused").to_string();
        assert!(err(serde_json::json!({"policy": "SCHED_FIFO"})).contains("priority 0"));
        assert!(
            err(serde_json::json!({"policy": "SCHED_OTHER", "priority": 3}))
                .contains("only SCHED_FIFO and SCHED_RR")
        );
        assert!(err(serde_json::json!({"policy": "SCHED_BATCH", "nice": 25})).contains("nice 25"));
        assert!(
            err(serde_json::json!({"policy": "SCHED_RR", "priority": 1, "runtime": 5}))
                .contains("only SCHED_DEADLINE")
        );
        let dl = sched_attr(&scheduler(serde_json::json!({"policy": "SCHED_DEADLINE",
            "runtime": 1000000, "deadline": 2000000, "period": 3000000,
            "flags": ["SCHED_FLAG_DL_OVERRUN"]})))
        .expect("deadline");
        assert_eq!(
            (dl.policy, dl.runtime, dl.period, dl.flags),
            (6, 1000000, 3000000, 4)
        );
    }

    #[test]
    fn io_priority_value() {
        let p: LinuxIOPriority =
            serde_json::from_value(serde_json::json!({"class": "IOPRIO_CLASS_RT", "priority": 3}))
                .expect("ioprio");
        assert_eq!(io_priority(&p).expect("ok"), 1 << 13 | 3);
        let p: LinuxIOPriority =
            serde_json::from_value(serde_json::json!({"class": "IOPRIO_CLASS_BE", "priority": 8}))
                .expect("ioprio");
        assert!(io_priority(&p)
            .expect_err("8")
            .to_string()
            .contains("priority 8"));
    }

    #[test]
    fn memory_policy_modes_and_nodes() {
        let m = |v| serde_json::from_value::<LinuxMemoryPolicy>(v).expect("policy");
        let bind = m(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0",
            "flags": ["MPOL_F_STATIC_NODES"]}));
        assert_eq!(memory_policy(&bind).expect("ok"), (2 | 1 << 15, vec![1]));
        assert!(
            memory_policy(&m(serde_json::json!({"mode": "MPOL_INTERLEAVE"})))
                .expect_err("no nodes")
                .to_string()
                .contains("at least one node")
        );
        assert!(
            memory_policy(&m(serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"})))
                .expect_err("nodes")
                .to_string()
                .contains("takes no nodes")
        );
        let far = m(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0,5"}));
        let err = check_nodes_exist(&far, "0\n")
            .expect_err("node 5")
            .to_string();
        assert!(
            err.contains("no memory node 5") && err.contains("online: 0"),
            "{err}"
        );
        let relative = m(serde_json::json!({"mode": "MPOL_BIND", "nodes": "5",
            "flags": ["MPOL_F_RELATIVE_NODES"]}));
        assert!(check_nodes_exist(&relative, "0").is_ok());
    }

    #[test]
    fn personality_flags_are_refused() {
        let p: LinuxPersonality =
            serde_json::from_value(serde_json::json!({"domain": "LINUX32", "flags": ["X"]}))
                .expect("personality");
        assert!(persona(&p)
            .expect_err("flags")
            .to_string()
            .contains("linux.personality.flags"));
    }
}
