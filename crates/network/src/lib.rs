//! Containers' networks. It owns the syscalls on network namespaces, links and nftables
//! (DESIGN.md: `network/`): the loopback every container gets, the bridge of the default
//! network, each container's namespace and veth pair, published ports (NAT in berth's own
//! nftables table, host ports held by sockets) and the /etc files of a container's network.

pub mod bridge;
pub mod cni;
pub mod dns;
pub mod endpoint;
pub mod etc;
mod loopback;
pub mod netns;
pub mod nft;
pub mod pin;
pub mod pool;
pub mod ports;
mod rtnl;

pub use ipnet::{Ipv4Net, Ipv6Net};
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
    #[error("{operation} {name}: {source}")]
    Link {
        operation: &'static str,
        name: String,
        source: nix::Error,
    },
    #[error("the network namespace file {path}: {source}")]
    NamespaceFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write {path}: {source}")]
    Sysctl {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("connect to {addr} in the network namespace {path}: {source}")]
    Connect {
        addr: std::net::SocketAddr,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Nft(#[from] nft::NftError),
    #[error(transparent)]
    Port(#[from] ports::PortError),
}

pub type Result<T> = std::result::Result<T, Error>;
