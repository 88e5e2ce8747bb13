//! process.execCPUAffinity: the CPUs of a process exec'd into the container (never init's,
//! as runtime-spec says). `initial` is the affinity of the runtime's side of the exec
//! before it enters the container's cgroup (so its setup runs on those CPUs, not on
//! isolated ones); `final` is set once it is in the cgroup (which, on a cgroup v1 cpuset,
//! resets the affinity to the cpuset's CPUs) and the process inherits it. Without `final`
//! the affinity is left as the cgroup made it.

use oci_spec::runtime::Process;

use super::id_list;
use crate::error::{Error, Result, SysContext};

/// The parsed masks.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ExecAffinity {
    initial: Option<Vec<u64>>,
    last: Option<Vec<u64>>,
}

impl ExecAffinity {
    /// The affinity `process` asks for, checked; None when it asks for none.
    pub fn of(process: &Process) -> Result<Option<Self>> {
        let Some(a) = process.exec_cpu_affinity() else {
            return Ok(None);
        };
        let parse = |field: &str, list: &Option<String>| -> Result<Option<Vec<u64>>> {
            let Some(list) = list.as_deref().filter(|l| !l.trim().is_empty()) else {
                return Ok(None);
            };
            let mask = id_list::parse(list).map_err(|e| {
                Error::config(format!("process.execCPUAffinity.{field} {list:?}: {e}"))
            })?;
            if id_list::ids(&mask).next().is_none() {
                return Err(Error::config(format!(
                    "process.execCPUAffinity.{field} {list:?} names no CPU"
                )));
            }
            Ok(Some(mask))
        };
        let affinity = ExecAffinity {
            initial: parse("initial", a.initial())?,
            last: parse("final", a.cpu_affinity_final())?,
        };
        Ok((affinity != ExecAffinity::default()).then_some(affinity))
    }

    /// Runtime side, before it forks the process that joins the container's cgroup.
    pub fn apply_initial(&self) -> Result<()> {
        match &self.initial {
            Some(mask) => crate::sys::sched::set_cpu_affinity(mask).ctx(|| {
                format!(
                    "process.execCPUAffinity.initial: sched_setaffinity {}",
                    text(mask)
                )
            }),
            None => Ok(()),
        }
    }

    /// In the container's cgroup, before the process is forked.
    pub fn apply_final(&self) -> Result<()> {
        match &self.last {
            Some(mask) => crate::sys::sched::set_cpu_affinity(mask).ctx(|| {
                format!(
                    "process.execCPUAffinity.final: sched_setaffinity {}",
                    text(mask)
                )
            }),
            None => Ok(()),
        }
    }
}

fn text(mask: &[u64]) -> String {
    let ids: Vec<String> = id_list::ids(mask).map(|n| n.to_string()).collect();
    format!("{:?}", ids.join(","))
}
