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
    /// `attach`: only what the log holds past this byte offset (its size when the attach
    /// began), until the container (created or running then) has run and exited, or is
    /// removed.
    pub attach_from: Option<u64>,
}

/// The size of container `id`'s log now (0 if it has none yet): where an attach starts.
pub fn log_size(containers: &Containers, id: &str) -> u64 {
    std::fs::metadata(containers.dir(id).join(format!("{id}-json.log"))).map_or(0, |m| m.len())
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
pub fn read(
    containers: &Containers,
    id: &str,
    opts: &LogOptions,
    emit: &mut dyn FnMut(Entry) -> bool,
) -> Result<()> {
    let path = containers.dir(id).join(format!("{id}-json.log"));
    let open = || std::fs::File::open(&path).ok().map(std::io::BufReader::new);
    let mut reader = open();
    if let (Some(r), Some(offset)) = (reader.as_mut(), opts.attach_from) {
        use std::io::Seek;
        r.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| Error::Io(format!("seek in {}: {e}", path.display())))?;
    }
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
    if !opts.follow {
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
            Status::Created => opts.attach_from.is_some(),
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
