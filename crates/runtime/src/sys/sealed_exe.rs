//! Run from a sealed in-memory copy of our own binary (the CVE-2019-5736 defence).
//!
//! A process of the container could open `/proc/<init>/exe` while our init runs inside it
//! and write to the host's runtime binary once we exit. If the binary we run is a sealed
//! memfd instead, that write lands nowhere: the seals forbid it and the memfd dies with us.
//!
//! When it is needed: init is always non-dumpable, so only a process holding CAP_SYS_PTRACE
//! in the host's user namespace can open its `/proc/<pid>/exe`, and only from a pid
//! namespace that can see init. In a new pid namespace those are the host's, where such a
//! process can already ptrace any host root process: the copy would protect nothing. It
//! does protect an init that joins an existing pid namespace (other containers' processes
//! are there), so the runtime re-executes sealed exactly then. The copy costs ~5 ms.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// Whether the running binary is already a sealed memfd.
pub fn running_sealed() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    match fcntl(exe.as_fd(), FcntlArg::F_GET_SEALS) {
        Ok(bits) => SealFlag::from_bits_truncate(bits).contains(SEALS),
        Err(_) => false,
    }
}

/// Re-execute the current command line from a sealed memfd copy of `/proc/self/exe`.
/// Returns only on failure.
pub fn reexec_sealed() -> std::io::Error {
    match try_reexec() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// Copy with read and write: `std::io::copy` splices, and pages still referenced by a pipe
/// make F_SEAL_WRITE fail with EBUSY (the kernel refuses to seal while pages are pinned).
fn copy_through_buffer(from: &mut File, to: &mut File) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match from.read(&mut buf)? {
            0 => return Ok(()),
            n => to.write_all(&buf[..n])?,
        }
    }
}

/// Seal the copy. F_SEAL_WRITE waits a little for pinned pages and then fails with EBUSY
/// (seen under load): a few tries before giving up.
fn add_seals(copy: &File) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(SEALS)) {
            Err(Errno::EBUSY) if tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other.map(drop).map_err(Into::into),
        }
    }
}

fn try_reexec() -> std::io::Result<Infallible> {
    let mut exe = File::open("/proc/self/exe")?;
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    // MFD_EXEC is needed where vm.memfd_noexec is set; kernels before 6.3 reject it.
    let memfd = memfd_create(
        c"berth-runtime",
        flags | MFdFlags::from_bits_retain(libc::MFD_EXEC),
    )
    .or_else(|_| memfd_create(c"berth-runtime", flags))?;
    let mut copy = File::from(memfd);
    copy_through_buffer(&mut exe, &mut copy)?;
    add_seals(&copy)?;
    let invalid = |_| std::io::Error::from(Errno::EINVAL);
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_vec()))
        .collect::<Result<_, _>>()
        .map_err(invalid)?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()
        .map_err(invalid)?;
    let Err(e) = nix::unistd::fexecve(copy.as_fd(), &args, &env);
    Err(e.into())
}
