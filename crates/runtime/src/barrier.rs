//! The exec barrier: init waits here between `create` and `start`.
//!
//! Like runc's exec.fifo, but a unix socket in the container's state directory, so `start`
//! also learns how it went: init answers with an error message if a startContainer hook or
//! the exec fails, and says nothing (the connection closes on exec) when the user's program
//! is running. The runtime process binds the socket (as host root, before any fork); init
//! inherits only the listening descriptor.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const NAME: &str = "exec.sock";
const REQUEST: &[u8] = b"start";

/// The barrier's path in a state directory.
pub(crate) fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(NAME)
}

/// A short path to `name` in the directory behind `dir`, to stay under the 108-byte limit
/// of unix socket addresses whatever the state root is.
fn short_path(dir: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{NAME}", dir.as_raw_fd()))
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    std::fs::File::open(dir)
        .map(OwnedFd::from)
        .map_err(|e| Error::io("open", dir, e))
}

/// Runtime side, during create.
pub(crate) fn listen(state_dir: &Path) -> Result<UnixListener> {
    let dir = open_dir(state_dir)?;
    UnixListener::bind(short_path(&dir)).map_err(|e| Error::io("bind", path(state_dir), e))
}

/// Init side: block until `start` connects. Returns the connection to report on.
pub(crate) fn wait_for_start(listener: &UnixListener) -> Result<UnixStream> {
    loop {
        let (mut conn, _) = listener
            .accept()
            .map_err(|e| Error::io("accept on", NAME, e))?;
        let mut buf = [0u8; REQUEST.len()];
        if conn.read_exact(&mut buf).is_ok() && buf == REQUEST {
            return Ok(conn);
        }
    }
}

/// Init side: tell `start` why the container did not start.
pub(crate) fn report_failure(conn: &mut UnixStream, msg: &str) {
    let _ = conn.write_all(msg.as_bytes());
}

/// `start` side: release init and wait until it has exec'd the user's program.
pub(crate) fn release(state_dir: &Path) -> Result<()> {
    let dir = open_dir(state_dir)?;
    let mut conn = UnixStream::connect(short_path(&dir))
        .map_err(|e| Error::io("connect to the exec barrier", path(state_dir), e))?;
    conn.write_all(REQUEST)
        .map_err(|e| Error::io("write to", path(state_dir), e))?;
    let mut answer = String::new();
    // EOF with no answer: the connection was closed by the exec of the user's program.
    let _ = conn.read_to_string(&mut answer);
    if answer.is_empty() {
        Ok(())
    } else {
        Err(Error::Init(format!("container failed to start: {answer}")))
    }
}
