//! cgroups for berth's containers, on pure v2, pure v1 and hybrid hosts (v1 controllers plus
//! a cgroup2 mount holding almost nothing, like the machines berth is tested on).
//!
//! - [`Layout`] reads the host's cgroup mounts once.
//! - [`Cgroup`] is one container's cgroup: a directory in every hierarchy, created, joined,
//!   limited ([`resources`] turns `linux.resources` into file writes), killed and removed.
//! - [`Stats`] and [`OomWatch`] report what happens inside it.

mod cgroup;
pub mod devices;
mod error;
mod layout;
mod oom;
pub mod resources;
pub mod stats;
mod sub;

pub use cgroup::Cgroup;
pub use error::{Error, Result};
pub use layout::{container_path, Hierarchy, Layout, Version};
pub use oom::OomWatch;
pub use stats::Stats;
pub use sub::SubCgroups;
