//! berth's OCI runtime library: from an OCI bundle to a running, isolated process.
//!
//! The binary `berth-runtime` (runc's command line) is a thin layer over [`container`]:
//! one module per lifecycle operation, in the order of the runtime-spec lifecycle.
//!
//! Process model of `create` (see `container::create`):
//! ```text
//!  runtime (parent) ──fork──▶ stage-1 ── joins namespaces by path, unshares user ns
//!       │                        │        (parent writes the id maps), unshares the rest
//!       │                        └─fork──▶ init (PID 1 of a new pid ns) ── builds the rootfs,
//!       │                                   pivots, drops privileges, then parks on the exec
//!       │                                   barrier until `start`; execs the user's program.
//!       └─ runs createRuntime hooks, writes state.json, exits
//! ```
//! All syscalls that act on a container are wrapped once, in [`sys`].

pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod passwd;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sys;

mod barrier;
mod console;
mod intel_rdt;
mod namespaces;
mod netdev;
mod process;
mod rootfs;
mod seccomp;
mod seccomp_notify;
mod sync;

pub use error::{Error, Result};
