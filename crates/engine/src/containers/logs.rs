//! Reading a container's json-file log for `docker logs`: stream selection, --tail,
//! --since/--until and --follow.

use std::io::BufRead;

use std::time::Duration;

use serde_json::Value;

use super::{Containers, Status};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    /// Only the last N lines (None: all).
    pub tail: Option<usize>,
    /// Unix seconds (fractions allowed), exclusive bounds.
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub follow: bool,
    pub timestamps: bool,
}

/// Container `id`'s log, opened (created if the container has not run yet) and positioned
/// at its end: what follows is an attach's output. Opened by the attach request itself, so
/// neither a quick container nor the removal of an --rm one can get ahead of the reader.
pub struct AttachPoint(std::io::BufReader<std::fs::File>);

pub fn attach_point(containers: &Containers, id: &str) -> Result<AttachPoint> {
    use std::io::Seek;
    let path = containers.dir(id).join(format!("{id}-json.log"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| Error::Io(format!("open {}: {e}", path.display())))?;
    file.seek(std::io::SeekFrom::End(0))
        .map_err(|e| Error::Io(format!("seek in {}: {e}", path.display())))?;
    Ok(AttachPoint(std::io::BufReader::new(file)))
}

/// One log entry: the stream (1 stdout, 2 stderr) and the bytes to send.
pub struct Entry {
    pub stream: u8,
    pub bytes: Vec<u8>,
}

fn seconds(rfc3339: &str) -> f64 {
    humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

fn entry(line: &str, opts: &LogOptions) -> Option<Entry> {
    let v: Value = serde_json::from_str(line).ok()?;
    let stream = match v["stream"].as_str()? {
        "stdout" if opts.stdout => 1,
        "stderr" if opts.stderr => 2,
        _ => return None,
    };
    let time = v["time"].as_str().unwrap_or_default();
    let t = seconds(time);
    if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t > u) {
        return None;
    }
    let text = v["log"].as_str().unwrap_or_default();
    let bytes = if opts.timestamps {
        format!("{time} {text}").into_bytes()
    } else {
        text.as_bytes().to_vec()
    };
    Some(Entry { stream, bytes })
}

/// Complete lines from `reader`'s position on; a line still being written is left for later.
fn complete_lines(
    reader: &mut std::io::BufReader<std::fs::File>,
    path: &std::path::Path,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::Io(format!("read {}: {e}", path.display())))?;
        if n == 0 {
            return Ok(out);
        }
        if !line.ends_with('\n') {
            let _ = reader.seek_relative(-(n as i64));
            return Ok(out);
        }
        line.pop();
        out.push(line);
    }
}

/// Send the log of container `id` to `emit` (which returns false once the client is gone).
///
/// With `attach`, the output from that point on, until the container (created or running
/// then) has run and exited, or is removed; `opts.follow` is implied.
pub fn read(
    containers: &Containers,
    id: &str,
    opts: &LogOptions,
    attach: Option<AttachPoint>,
    emit: &mut dyn FnMut(Entry) -> bool,
) -> Result<()> {
    let path = containers.dir(id).join(format!("{id}-json.log"));
    let open = || std::fs::File::open(&path).ok().map(std::io::BufReader::new);
    let attaching = attach.is_some();
    let mut reader = match attach {
        Some(AttachPoint(r)) => Some(r),
        None => open(),
    };
    let first = match reader.as_mut() {
        Some(r) => complete_lines(r, &path)?,
        None => Vec::new(),
    };
    let entries: Vec<Entry> = first.iter().filter_map(|l| entry(l, opts)).collect();
    let skip = opts.tail.map_or(0, |n| entries.len().saturating_sub(n));
    for e in entries.into_iter().skip(skip) {
        if !emit(e) {
            return Ok(());
        }
    }
    if !opts.follow && !attaching {
        return Ok(());
    }
    // Follow: new lines as they come, until the container is no longer running and the
    // file has nothing more.
    loop {
        if reader.is_none() {
            reader = open();
        }
        let lines = match reader.as_mut() {
            Some(r) => complete_lines(r, &path)?,
            None => Vec::new(),
        };
        for l in &lines {
            if let Some(e) = entry(l, opts) {
                if !emit(e) {
                    return Ok(());
                }
            }
        }
        // Attached output goes on while the container is yet to start or runs.
        let live = |r: &super::ContainerRecord| match r.state.status {
            Status::Running => true,
            Status::Created => attaching,
            Status::Exited => false,
        };
        let running = containers.resolve(id).is_ok_and(|r| live(&r));
        if !running && lines.is_empty() {
            return Ok(());
        }
        if lines.is_empty() {
            containers.wait_until(id, Duration::from_millis(100), |r| {
                r.is_none_or(|r| !live(r))
            });
        }
    }
}
