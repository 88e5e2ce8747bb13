//! Containers' networks. It owns the syscalls on network namespaces and links (DESIGN.md:
//! `network/`); today only what every container needs: its loopback, up.

mod loopback;

pub use loopback::loopback_up;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open the network namespace {path}: {source}")]
    OpenNamespace {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("enter the network namespace {path}: {source}")]
    EnterNamespace { path: PathBuf, source: nix::Error },
    #[error("{operation} of {interface} in the network namespace {path}: {source}")]
    Interface {
        operation: &'static str,
        interface: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("the thread that entered the network namespace {path} failed: {message}")]
    Thread { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;
