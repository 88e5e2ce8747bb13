//! The container's terminal: a pty opened in the container's devpts, its slave bound to
//! /dev/console and made the controlling terminal, its master handed to whoever listens
//! on --console-socket (SCM_RIGHTS, as runc does).

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::Process;

use crate::error::{Error, Result, SysContext};
use crate::sys::fs::{create_in_root, open_in_root, Leaf};
use crate::sys::{mount as m, tty};

pub(crate) struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Connect to the console socket (runtime side, before any fork).
pub(crate) fn connect(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| Error::io("connect to console socket", path, e))
}

/// Open a pty in the container's devpts (through its /dev/ptmx), sized as asked.
pub(crate) fn open(root: BorrowedFd<'_>, process: &Process) -> Result<Pty> {
    let master = open_in_root(
        root,
        Path::new("/dev/ptmx"),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
    )
    .ctx(|| "open /dev/ptmx in the container (is /dev/pts mounted?)".into())?;
    tty::unlock_pt(master.as_fd()).ctx(|| "unlock pty".into())?;
    let slave = tty::open_peer(master.as_fd()).ctx(|| "open pty slave".into())?;
    if let Some(size) = process.console_size() {
        let rows = u16::try_from(size.height()).unwrap_or(u16::MAX);
        let cols = u16::try_from(size.width()).unwrap_or(u16::MAX);
        tty::set_winsize(master.as_fd(), rows, cols).ctx(|| "set console size".into())?;
    }
    Ok(Pty { master, slave })
}

/// Bind the slave onto /dev/console.
pub(crate) fn bind_console(root: BorrowedFd<'_>, pty: &Pty) -> Result<()> {
    let target = create_in_root(root, Path::new("/dev/console"), Leaf::File)
        .ctx(|| "create /dev/console".into())?;
    let source = crate::sys::fs::fd_path(pty.slave.as_fd());
    m::mount_on(Some(&source), target.as_fd(), None, MsFlags::MS_BIND, None)
        .ctx(|| "bind /dev/console".into())
}

/// Hand the master to the console socket; the payload is its name, as runc sends it.
pub(crate) fn send_master(socket: &UnixStream, pty: &Pty) -> Result<()> {
    let fds = [pty.master.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx(|| "send pty master to the console socket".into())?;
    Ok(())
}

/// Make the slave this process's controlling terminal and its stdio.
pub(crate) fn attach_stdio(pty: &Pty) -> Result<()> {
    tty::set_controlling(pty.slave.as_fd()).ctx(|| "set controlling terminal".into())?;
    tty::dup_to_stdio(&pty.slave).ctx(|| "dup pty slave onto stdio".into())
}

/// Receive a pty master sent with SCM_RIGHTS (the `run` command's own console).
pub fn receive_master(socket: &UnixStream) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::io::IoSliceMut;
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "receive pty master".into())?;
    for cmsg in msg.cmsgs().ctx(|| "read control message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(fd) = fds.first() {
                // SAFETY: SCM_RIGHTS installed this descriptor in our table just now; we are
                // its only owner.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(Error::Init(
        "the console socket carried no file descriptor".into(),
    ))
}
