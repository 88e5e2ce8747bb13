//! cgroups for berth's containers, on pure v2, pure v1 and hybrid hosts (v1 controllers plus
//! a cgroup2 mount holding almost nothing, like the machines berth is tested on).
//!
//! - [`Layout`] reads the host's cgroup mounts once.
//! - [`Cgroup`] is one container's cgroup: a directory in every hierarchy, created, joined,
//!   limited ([`resources`] turns `linux.resources` into file writes), killed and removed.

mod cgroup;
mod error;
mod layout;
pub mod resources;

pub use cgroup::Cgroup;
pub use error::{Error, Result};
pub use layout::{Hierarchy, Layout, Version};
