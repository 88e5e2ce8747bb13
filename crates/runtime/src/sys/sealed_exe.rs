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
//! are there), so the runtime re-executes sealed exactly then. The copy costs ~5 ms, so
//! berthd makes one (`sealed_copy`) and has its shims start the runtime from it: the
//! runtime then finds itself sealed already and skips its own copy.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

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

/// A sealed copy of `from` in a new memfd (close-on-exec), opened again read-only: the
/// seals forbid writes through any descriptor, and the one returned cannot even try.
fn sealed_copy_of(mut from: File) -> std::io::Result<File> {
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    // MFD_EXEC is needed where vm.memfd_noexec is set; kernels before 6.3 reject it.
    let memfd = memfd_create(
        c"berth-runtime",
        flags | MFdFlags::from_bits_retain(libc::MFD_EXEC),
    )
    .or_else(|_| memfd_create(c"berth-runtime", flags))?;
    let mut copy = File::from(memfd);
    copy_through_buffer(&mut from, &mut copy)?;
    add_seals(&copy)?;
    File::open(format!("/proc/self/fd/{}", copy.as_raw_fd()))
}

/// A sealed, read-only in-memory copy of the runtime binary at `path`, for a caller that
/// starts the runtime many times (berthd): the runtime started from it finds itself
/// sealed (`running_sealed`) and does not copy itself again at each create.
pub fn sealed_copy(path: &Path) -> std::io::Result<File> {
    sealed_copy_of(File::open(path)?)
}

fn try_reexec() -> std::io::Result<Infallible> {
    tracing::debug!("copying berth-runtime into a sealed memfd to re-execute from it");
    let copy = sealed_copy_of(File::open("/proc/self/exe")?)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn the_copy_is_sealed_and_read_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let original = dir.path().join("binary");
        std::fs::write(&original, b"not really a binary").expect("write");
        let mut copy = sealed_copy(&original).expect("sealed copy");
        let seals = fcntl(copy.as_fd(), FcntlArg::F_GET_SEALS).expect("seals");
        assert!(SealFlag::from_bits_truncate(seals).contains(SEALS));
        let mut text = String::new();
        copy.read_to_string(&mut text).expect("read");
        assert_eq!(text, "not really a binary");
        // Not through this descriptor, nor through one opened for writing (as a process
        // could open /proc/<pid>/exe of a runtime started from the copy).
        assert!(copy.write_all(b"x").is_err());
        let path = format!("/proc/self/fd/{}", copy.as_raw_fd());
        let mut writable = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open the memfd for writing");
        let err = writable
            .write_all(b"x")
            .expect_err("a sealed memfd takes no write");
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        assert!(writable.set_len(0).is_err());
        assert!(fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(SealFlag::empty())).is_err());
    }
}
