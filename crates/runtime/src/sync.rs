//! Messages between the runtime process and the processes it forks during `create`.
//!
//! A SOCK_SEQPACKET pair carries one JSON message per packet, and at most one descriptor
//! with it (SCM_RIGHTS). Both child stages hold the child end; the runtime sees EOF if they
//! die before `Ready`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

/// From the child stages to the runtime process.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ChildMsg {
    /// Stage 1 unshared a user namespace: write its id maps.
    MapIds,
    /// Stage 1 unshared a time namespace with clock offsets: write them.
    SetTimeOffsets,
    /// Stage 1 forked init; its pid as seen by the runtime.
    InitPid(i32),
    /// Init built the environment: run prestart and createRuntime hooks now.
    RunRuntimeHooks,
    /// The seccomp filter is loaded; its notify listener comes with this message, for the
    /// runtime to hand to `linux.seccomp.listenerPath`.
    SeccompListener,
    /// Init is parked on the exec barrier.
    Ready,
    Failed(String),
}

/// From the runtime process to the child stages.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ParentMsg {
    /// Init is in its cgroup: it may create its cgroup namespace now.
    CgroupJoined,
    IdsMapped,
    TimeOffsetsSet,
    HooksDone,
}

pub(crate) struct Channel(OwnedFd);

impl Channel {
    /// A connected pair: (runtime end, child end). Both close on exec.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx(|| "socketpair".into())?;
        Ok((Channel(a), Channel(b)))
    }

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        let bytes = serde_json::to_vec(msg)
            .map_err(|e| Error::Init(format!("encode sync message: {e}")))?;
        send(self.0.as_raw_fd(), &bytes, MsgFlags::empty()).ctx(|| "send sync message".into())?;
        Ok(())
    }

    /// Send `msg` with the descriptor `fd` attached.
    pub fn send_with_fd<T: Serialize>(&self, msg: &T, fd: BorrowedFd<'_>) -> Result<()> {
        let bytes = serde_json::to_vec(msg)
            .map_err(|e| Error::Init(format!("encode sync message: {e}")))?;
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .ctx(|| "send sync message with a descriptor".into())?;
        Ok(())
    }

    /// The next message, or None when the other side has closed.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        Ok(self.recv_with_fd()?.map(|(msg, _)| msg))
    }

    /// The next message and the descriptor that came with it, if any (an unexpected one is
    /// closed when the caller drops it).
    pub fn recv_with_fd<T: DeserializeOwned>(&self) -> Result<Option<(T, Option<OwnedFd>)>> {
        /// Room for one SCM_RIGHTS descriptor, aligned as a `struct cmsghdr` must be.
        #[repr(C, align(8))]
        struct Control([u8; 64]);
        let mut buf = vec![0u8; 64 * 1024];
        let mut control = Control([0; 64]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut control.0),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("receive sync message", e)),
                Ok(msg) => {
                    let mut fd = None;
                    for cmsg in msg.cmsgs().ctx(|| "receive sync message".into())? {
                        if let ControlMessageOwned::ScmRights(fds) = cmsg {
                            // Owned at once, so that any beyond the one kept are closed.
                            let mut owned: Vec<OwnedFd> = fds.into_iter().map(own).collect();
                            fd = owned.pop();
                        }
                    }
                    break (msg.bytes, fd);
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(|msg| Some((msg, fd)))
            .map_err(|e| Error::Init(format!("decode sync message: {e}")))
    }
}

/// Take ownership of a descriptor received with SCM_RIGHTS.
fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed this descriptor for us in recvmsg; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
