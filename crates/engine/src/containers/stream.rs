//! A container's streams through its shim: attach (output frames one way, input the
//! other), terminal resize, and attaches that wait for the container to start.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;

use berth_shim_protocol::Request;

use super::{ContainerRecord, Status};
use crate::error::{Error, Result};
use crate::Engine;

/// A connection to a shim, past its answer line.
pub type ShimStream = BufReader<UnixStream>;

#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// The log is replayed first (`logs=1`): a running container's shim says where the log
    /// ended when the attach began.
    pub logs: bool,
}

/// An attach: connected now (the container runs; with where its log ended then, when the
/// log is to be replayed), or once the container starts.
pub enum Attached {
    Now(ShimStream, Option<berth_shim_protocol::LogPosition>),
    AtStart(mpsc::Receiver<Result<ShimStream>>),
}

/// An attach request and where its connection goes once the container starts.
type Waiter = (Request, mpsc::Sender<Result<ShimStream>>);

/// Attaches waiting for their container's start.
#[derive(Default)]
pub struct Waiting(Mutex<HashMap<String, Vec<Waiter>>>);

impl Waiting {
    fn add(&self, id: &str, request: Request) -> mpsc::Receiver<Result<ShimStream>> {
        let (tx, rx) = mpsc::channel();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_string())
            .or_default()
            .push((request, tx));
        rx
    }

    fn take(&self, id: &str) -> Vec<Waiter> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .unwrap_or_default()
    }

    /// Whether an attach waits for the start of `id`.
    pub(crate) fn any(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .is_some_and(|w| !w.is_empty())
    }

    /// The container is gone: its waiting attaches end.
    pub fn forget(&self, id: &str) {
        drop(self.take(id));
    }
}

/// Send `request` to the shim of the container whose bundle is `bundle`.
pub(crate) fn request(bundle: &Path, request: &Request) -> Result<(ShimStream, String)> {
    let (stream, answer) = berth_shim_protocol::request(bundle, request)
        .map_err(|e| Error::Conflict(format!("the container's shim is not reachable: {e}")))?;
    let detail = answer.map_err(Error::Conflict)?;
    Ok((stream, detail))
}

/// One frame of a shim stream: (stream id, payload), None at the end.
pub fn read_frame(reader: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 8];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (stream, len) = berth_shim_protocol::parse_header(&header);
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload)?;
    Ok(Some((stream, payload)))
}

impl Engine {
    /// `POST /containers/{id}/attach`: standard input is passed only to a container created
    /// with it open (-i), as Docker does.
    pub fn attach_container(
        &self,
        name: &str,
        opts: AttachOptions,
    ) -> Result<(ContainerRecord, Attached)> {
        let record = self.containers.resolve(name)?;
        if record.state.restarting {
            return Err(Error::Conflict(format!(
                "container {name} is restarting, wait until the container is running"
            )));
        }
        self.containers.event(&record.id, "attach", &[]);
        let request = |logs| Request::Attach {
            stdin: opts.stdin && record.config.open_stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
            logs,
        };
        if record.state.status == Status::Running {
            let (stream, detail) = request_or_stopped(
                &self.containers.bundle(&record.id),
                &request(opts.logs),
                &record,
            )?;
            // An older shim says nothing: the whole log is replayed then.
            let position = serde_json::from_str(&detail).ok();
            return Ok((record, Attached::Now(stream, position)));
        }
        // Not running: its log is complete now, and replayed whole before the wait.
        let rx = self.containers.waiting.add(&record.id, request(false));
        Ok((record, Attached::AtStart(rx)))
    }

    /// Connect the attaches waiting for `id` (its shim has created it, not started it).
    pub(crate) fn connect_waiting(&self, id: &str) {
        let bundle = self.containers.bundle(id);
        for (request, tx) in self.containers.waiting.take(id) {
            let _ = tx.send(request_to(&bundle, &request));
        }
    }

    /// The shim opens the container's log file again (the CRI's ReopenContainerLog).
    pub fn reopen_log(&self, id: &str) -> Result<()> {
        let record = self.containers.resolve(id)?;
        if record.state.status != Status::Running {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                record.id
            )));
        }
        request_or_stopped(
            &self.containers.bundle(&record.id),
            &Request::ReopenLog,
            &record,
        )
        .map(drop)
    }

    /// `POST /containers/{id}/resize`.
    pub fn resize_container(&self, name: &str, height: u16, width: u16) -> Result<()> {
        let record = self.containers.resolve(name)?;
        if record.state.status != Status::Running {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        let request = Request::Resize {
            exec: None,
            height,
            width,
        };
        request_or_stopped(&self.containers.bundle(&record.id), &request, &record).map(drop)
    }
}

fn request_to(bundle: &Path, req: &Request) -> Result<ShimStream> {
    request(bundle, req).map(|(s, _)| s)
}

/// A request to a running container's shim; a shim that has just gone means "not running".
fn request_or_stopped(
    bundle: &Path,
    req: &Request,
    record: &ContainerRecord,
) -> Result<(ShimStream, String)> {
    match berth_shim_protocol::request(bundle, req) {
        Ok((stream, Ok(detail))) => Ok((stream, detail)),
        Ok((_, Err(msg))) => Err(Error::Conflict(msg)),
        Err(_) => Err(Error::Conflict(format!(
            "Container {} is not running",
            record.id
        ))),
    }
}
