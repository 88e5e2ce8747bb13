//! Every syscall the runtime makes on behalf of a container, wrapped once with a safe interface.
//!
//! Callers above this module never touch raw file descriptors or `libc` directly.

pub mod fs;
pub mod mount;
pub mod proc;
pub mod sched;
pub mod sealed_exe;
pub mod tty;
pub mod userns;
