//! The bpf(2) commands the device filter needs, wrapped once. Each `bpf_attr` variant is its
//! own `repr(C)` struct with the kernel's field order; the kernel accepts a shorter attr as
//! long as it covers the fields the command reads.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::program::Insn;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The most programs one cgroup is expected to carry; the kernel's own limit is 64.
const MAX_PROGRAMS: usize = 64;

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr, sizeof attr).
///
/// # Safety
/// `attr` must be the attr struct of `cmd`, and every pointer in it valid for the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: per this function's contract; the size passed is that of `T`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned_fd(rc: libc::c_long) -> io::Result<OwnedFd> {
    let fd = i32::try_from(rc).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned this new descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(file: &impl AsRawFd) -> u32 {
    file.as_raw_fd() as u32
}

/// Load a device program; the verifier's log becomes the error when it refuses.
pub fn load_device_program(insns: &[Insn]) -> io::Result<OwnedFd> {
    let license = c"Apache";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: insns, license and (below) log outlive the call; their lengths are given.
    if let Ok(rc) = unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        return owned_fd(rc);
    }
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as above.
    match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(rc) => owned_fd(rc),
        Err(e) => {
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            Err(io::Error::new(e.kind(), format!("{e}: {text}")))
        }
    }
}

pub fn attach_device_program(cgroup: &File, prog: &OwnedFd) -> io::Result<()> {
    let mut attr = ProgAttach {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: ProgAttach is BPF_PROG_ATTACH's attr; it holds no pointers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

pub fn detach_device_program(cgroup: &File, prog: &OwnedFd) -> io::Result<()> {
    let mut attr = ProgAttach {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    // SAFETY: ProgAttach is BPF_PROG_DETACH's attr; it holds no pointers.
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// Descriptors of the device programs attached directly to `cgroup`.
pub fn attached_device_programs(cgroup: &File) -> io::Result<Vec<OwnedFd>> {
    let mut ids = [0u32; MAX_PROGRAMS];
    let mut attr = ProgQuery {
        target_fd: fd_u32(cgroup),
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    // SAFETY: prog_ids points at prog_cnt writable u32s that outlive the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }?;
    let count = (attr.prog_cnt as usize).min(ids.len());
    ids[..count]
        .iter()
        .map(|id| {
            let mut attr = GetFdById {
                prog_id: *id,
                ..Default::default()
            };
            // SAFETY: GetFdById is BPF_PROG_GET_FD_BY_ID's attr; it holds no pointers.
            unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }.and_then(owned_fd)
        })
        .collect()
}
