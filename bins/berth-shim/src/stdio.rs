//! The descriptors the shim holds for a process: output it reads (pipes or a pty master)
//! and input it writes without ever blocking the shim.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, OFlag};

pub fn set_nonblocking(fd: impl AsFd) -> Result<()> {
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).context("F_GETFL")?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags)).context("F_SETFL")?;
    Ok(())
}

/// An output of a process: read when ready, until EOF (or EIO on a pty whose slave is gone).
pub struct Output {
    pub file: File,
    /// Docker's stream id (1 stdout, 2 stderr).
    pub stream: u8,
    pub open: bool,
}

impl Output {
    pub fn new(fd: OwnedFd, stream: u8) -> Result<Output> {
        set_nonblocking(&fd)?;
        Ok(Output {
            file: File::from(fd),
            stream,
            open: true,
        })
    }

    /// What is there to read now (empty when nothing is); marks the output closed at its end.
    pub fn read_available(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; 64 * 1024];
        match self.file.read(&mut buf) {
            Ok(0) => {
                self.open = false;
                Vec::new()
            }
            Ok(n) => {
                buf.truncate(n);
                buf
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Vec::new(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Vec::new(),
            Err(_) => {
                self.open = false;
                Vec::new()
            }
        }
    }
}

/// An input of a process (a pipe or a pty master), written without blocking: what the
/// process has not taken yet waits here, and its feeders are not read meanwhile.
pub struct Sink {
    file: Option<File>,
    pending: Vec<u8>,
    close_when_drained: bool,
}

impl Sink {
    pub fn new(fd: OwnedFd) -> Result<Sink> {
        set_nonblocking(&fd)?;
        Ok(Sink {
            file: Some(File::from(fd)),
            pending: Vec::new(),
            close_when_drained: false,
        })
    }

    pub fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// Whether more input can be taken now.
    pub fn ready(&self) -> bool {
        self.file.is_some() && self.pending.is_empty()
    }

    pub fn has_pending(&self) -> bool {
        self.file.is_some() && !self.pending.is_empty()
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.file.is_some() {
            self.pending.extend_from_slice(data);
            self.flush();
        }
    }

    /// Write what is pending; on a broken pipe (the process closed its input) drop it all.
    pub fn flush(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        while !self.pending.is_empty() {
            match file.write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.pending.clear();
                    self.file = None;
                    return;
                }
            }
        }
        if self.close_when_drained {
            self.file = None;
        }
    }

    /// The feeder is done (stdin-once): close once everything pending is written.
    pub fn close_when_drained(&mut self) {
        self.close_when_drained = true;
        self.flush();
    }
}

/// A process's standard descriptors, as the shim sets them up for the runtime.
pub struct Plumbing {
    /// Given to the runtime (the process's stdin, stdout, stderr).
    pub child: [Stdio; 3],
    pub outputs: Vec<Output>,
    pub input: Option<Sink>,
    /// The pty master (a terminal's size is set on it).
    pub console: Option<File>,
}

impl Plumbing {
    /// Pipes: stdout and stderr always, stdin when the process reads input.
    pub fn pipes(stdin: bool) -> Result<Plumbing> {
        let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe");
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (child_in, input) = if stdin {
            let (in_r, in_w) = pipe()?;
            (Stdio::from(in_r), Some(Sink::new(in_w)?))
        } else {
            (Stdio::null(), None)
        };
        Ok(Plumbing {
            child: [child_in, Stdio::from(out_w), Stdio::from(err_w)],
            outputs: vec![
                Output::new(out_r, berth_shim_protocol::STDOUT)?,
                Output::new(err_r, berth_shim_protocol::STDERR)?,
            ],
            input,
            console: None,
        })
    }

    /// A terminal: the runtime sends its master to `listener` (its --console-socket).
    /// Called once the runtime has returned, so the master is already queued.
    pub fn terminal(listener: &UnixListener) -> Result<Plumbing> {
        listener.set_nonblocking(true).context("console socket")?;
        let conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                bail!("the runtime did not send the terminal")
            }
            Err(e) => return Err(e).context("accept on the console socket"),
        };
        conn.set_nonblocking(false).context("console socket")?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .context("console socket")?;
        let master =
            berth_runtime::container::receive_master(&conn).context("receive the terminal")?;
        let reader = master.try_clone().context("dup the terminal")?;
        let console = File::from(master.try_clone().context("dup the terminal")?);
        Ok(Plumbing {
            child: [Stdio::null(), Stdio::null(), Stdio::null()],
            outputs: vec![Output::new(reader, berth_shim_protocol::STDOUT)?],
            input: Some(Sink::new(master)?),
            console: Some(console),
        })
    }

    /// Hand the child's ends to `cmd` (they close in the shim once the command has run).
    pub fn give(&mut self, cmd: &mut std::process::Command) {
        let [i, o, e] = std::mem::replace(
            &mut self.child,
            [Stdio::null(), Stdio::null(), Stdio::null()],
        );
        cmd.stdin(i).stdout(o).stderr(e);
    }
}
