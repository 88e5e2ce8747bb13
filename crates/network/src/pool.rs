//! Spare places on a bridge, made ahead of time: a network namespace with its veth pair,
//! the peer (`eth0`) inside with its address, MAC and default route, loopback up, exactly
//! as [`crate::endpoint::attach`] makes a container's. A container that starts takes one
//! (a bind mount of its namespace onto the container's namespace file) instead of making
//! its own: creating the pair is the slow, lock-bound part of a start on a bridge (the
//! veth's RTM_NEWLINK waits for the rtnl lock, which the kernel's teardown of the previous
//! container's namespace holds), and it now happens in the background.
//!
//! Each spare's namespace is held by a file named after its host end in the pool's
//! directory, so leftovers of a berthd that was killed are found by [`sweep`] at the next
//! start (the link is deleted by that name, wherever the file's mount went).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use ipnet::Ipv4Net;
use nix::mount::MsFlags;

use crate::endpoint::{self, Attachment, CONTAINER_IFNAME};
use crate::{Error, Result};

/// The host ends of spares start with this (a container's start with `vb` and its id,
/// which is hex: the two never meet).
pub const HOST_PREFIX: &str = "vbp";

/// One spare, ready to be taken.
#[derive(Debug, Clone)]
pub struct Spare {
    /// The file that holds its namespace.
    pub netns: PathBuf,
    pub host_ifname: String,
    pub ip: Ipv4Addr,
}

/// What every spare of a pool is made like: the bridge's.
#[derive(Debug, Clone)]
pub struct Shape {
    pub bridge: String,
    pub mtu: u32,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

#[derive(Default)]
struct State {
    ready: Vec<Spare>,
    /// Addresses of spares being made.
    making: Vec<Ipv4Addr>,
    /// Drained: nothing more is made, what is finished late is destroyed.
    closed: bool,
}

/// The spares of one bridge.
pub struct Pool {
    dir: PathBuf,
    size: usize,
    state: Mutex<State>,
    /// Signalled when a spare is finished (the drain waits for those being made).
    finished: Condvar,
}

impl Pool {
    /// A pool of `size` spares whose namespace files live in `dir`.
    pub fn new(dir: PathBuf, size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            dir,
            size,
            state: Mutex::new(State::default()),
            finished: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The addresses the pool holds (ready or being made): the IPAM hands them to no one.
    pub fn reserved(&self) -> Vec<Ipv4Addr> {
        let s = self.lock();
        s.ready
            .iter()
            .map(|x| x.ip)
            .chain(s.making.iter().copied())
            .collect()
    }

    /// How many spares are missing.
    pub fn wanted(&self) -> usize {
        let s = self.lock();
        if s.closed {
            return 0;
        }
        self.size.saturating_sub(s.ready.len() + s.making.len())
    }

    /// The oldest ready spare.
    pub fn take(&self) -> Option<Spare> {
        let mut s = self.lock();
        (!s.ready.is_empty()).then(|| s.ready.remove(0))
    }

    /// The ready spare holding `ip`, if any (an address asked for by a container: the
    /// spare gives it up).
    pub fn take_ip(&self, ip: Ipv4Addr) -> Option<Spare> {
        let mut s = self.lock();
        let i = s.ready.iter().position(|x| x.ip == ip)?;
        Some(s.ready.remove(i))
    }

    /// Make spares with addresses `ips` (reserved by the caller's IPAM) in a thread of
    /// their own; they become ready one by one.
    pub fn fill(self: &Arc<Self>, shape: Shape, ips: Vec<Ipv4Addr>) {
        if ips.is_empty() {
            return;
        }
        self.lock().making.extend(ips.iter().copied());
        let pool = self.clone();
        let left = ips.clone();
        let spawned = std::thread::Builder::new()
            .name("netns-spares".into())
            .spawn(move || pool.make_all(&shape, ips));
        if let Err(e) = spawned {
            tracing::warn!("spare network namespaces: {e}");
            let mut s = self.lock();
            s.making.retain(|ip| !left.contains(ip));
        }
    }

    fn make_all(&self, shape: &Shape, ips: Vec<Ipv4Addr>) {
        let mut failed = false;
        for ip in ips {
            let made = if failed || self.lock().closed {
                None
            } else {
                match make(&self.dir, shape, ip) {
                    Ok(spare) => Some(spare),
                    Err(e) => {
                        // The next start makes its own place (and reports the cause, if it
                        // is not a passing one).
                        tracing::warn!("a spare network namespace: {e}");
                        failed = true;
                        None
                    }
                }
            };
            let mut s = self.lock();
            s.making.retain(|x| *x != ip);
            match made {
                Some(spare) if s.closed => {
                    drop(s);
                    destroy(&spare);
                }
                Some(spare) => s.ready.push(spare),
                None => {}
            }
            self.finished.notify_all();
        }
    }

    /// Destroy every spare, after those being made are finished (at most `wait`); none is
    /// made afterwards.
    pub fn drain(&self, wait: Duration) {
        let mut s = self.lock();
        s.closed = true;
        let deadline = std::time::Instant::now() + wait;
        while !s.making.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            s = match self.finished.wait_timeout(s, left) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        let spares = std::mem::take(&mut s.ready);
        drop(s);
        for spare in &spares {
            destroy(spare);
        }
    }
}

fn random_suffix() -> Result<String> {
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|source| Error::NamespaceFile {
            path: PathBuf::from("/dev/urandom"),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Make one spare with address `ip` (undone on failure).
pub fn make(dir: &Path, shape: &Shape, ip: Ipv4Addr) -> Result<Spare> {
    let host_ifname = format!("{HOST_PREFIX}{}", random_suffix()?);
    let address = Ipv4Net::new(ip, shape.prefix).map_err(|e| Error::Config(e.to_string()))?;
    let spare = Spare {
        netns: dir.join(&host_ifname),
        host_ifname,
        ip,
    };
    let made = endpoint::attach(&Attachment {
        netns: spare.netns.clone(),
        join: false,
        bridge: shape.bridge.clone(),
        host_ifname: spare.host_ifname.clone(),
        ifname: CONTAINER_IFNAME.to_string(),
        mac: endpoint::mac_for(ip),
        address,
        // Spares serve IPv4-only bridges (an IPv6 one makes each endpoint at start).
        address6: None,
        gateway: shape.gateway,
        default_route: true,
        mtu: shape.mtu,
        dns: false,
        sysctls: Vec::new(),
    });
    match made {
        Ok(_) => Ok(spare),
        Err(e) => {
            destroy(&spare);
            Err(e)
        }
    }
}

/// Give the spare's namespace to a container: it is bound onto `netns` (a file that does
/// not exist yet), and the spare's own file goes. The veth keeps its name.
pub fn claim(spare: &Spare, netns: &Path) -> Result<()> {
    let bound = bind(&spare.netns, netns);
    let released = endpoint::release_namespace(&spare.netns);
    bound.and(released)
}

fn bind(from: &Path, to: &Path) -> Result<()> {
    let io = |source| Error::NamespaceFile {
        path: to.to_path_buf(),
        source,
    };
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(io)?;
    nix::mount::mount(Some(from), to, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(
        |source| {
            let _ = std::fs::remove_file(to);
            Error::EnterNamespace {
                path: to.to_path_buf(),
                source,
            }
        },
    )
}

/// Undo a spare: its veth (the peer goes with it) and its namespace's file.
pub fn destroy(spare: &Spare) {
    if let Err(e) = endpoint::detach(&spare.netns, &spare.host_ifname) {
        tracing::warn!("a spare network namespace: {e}");
    }
}

/// At berthd's start: spares a previous berthd left (it was killed) are destroyed, by the
/// names of their files in `dir`.
pub fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(HOST_PREFIX) {
            continue;
        }
        destroy(&Spare {
            netns: entry.path(),
            host_ifname: name,
            ip: Ipv4Addr::UNSPECIFIED,
        });
    }
}
