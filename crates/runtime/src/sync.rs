//! Messages between the runtime process and the processes it forks during `create`.
//!
//! A SOCK_SEQPACKET pair carries one JSON message per packet. Both child stages hold the
//! child end; the runtime sees EOF if they die before `Ready`.

use std::os::fd::OwnedFd;

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
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
        send(
            std::os::fd::AsRawFd::as_raw_fd(&self.0),
            &bytes,
            MsgFlags::empty(),
        )
        .ctx(|| "send sync message".into())?;
        Ok(())
    }

    /// The next message, or None when the other side has closed.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(
                std::os::fd::AsRawFd::as_raw_fd(&self.0),
                &mut buf,
                MsgFlags::empty(),
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.ctx(|| "receive sync message".into())?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Init(format!("decode sync message: {e}")))
    }
}
