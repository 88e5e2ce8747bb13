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

/// The rotated files of a log, oldest first (`LOG.N` ... `LOG.1`).
fn rotated(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for n in 1.. {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        let p = std::path::PathBuf::from(name);
        if !p.exists() {
            break;
        }
        files.push(p);
    }
    files.reverse();
    files
}

fn inode(file: &std::fs::File) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| m.ino())
}

/// Where the live log of container `id` ends now (for a replay of a container that does
/// not run: what a start writes after this is not replayed, it reaches the attach live).
pub fn position(containers: &Containers, id: &str) -> Option<berth_shim_protocol::LogPosition> {
    let path = containers.dir(id).join(format!("{id}-json.log"));
    let file = std::fs::File::open(path).ok()?;
    Some(berth_shim_protocol::LogPosition {
        inode: inode(&file)?,
        size: file.metadata().ok()?.len(),
    })
}

/// Send the log of container `id` as it was at `up_to` (where its shim said the live file
/// ended when an attach began; None: all of it) to `emit`, for an attach that replays the
/// log first (`attach?logs=1`). The files after the one `up_to` names are not read: what
/// they hold reaches the attach live.
pub fn replay(
    containers: &Containers,
    id: &str,
    up_to: Option<berth_shim_protocol::LogPosition>,
    opts: &LogOptions,
    emit: &mut dyn FnMut(Entry) -> bool,
) -> Result<()> {
    use std::io::Read;
    let path = containers.dir(id).join(format!("{id}-json.log"));
    let mut files = rotated(&path);
    files.push(path);
    for file in files {
        let Ok(f) = std::fs::File::open(&file) else {
            continue;
        };
        let limit = up_to.filter(|p| inode(&f) == Some(p.inode)).map(|p| p.size);
        let mut reader = std::io::BufReader::new(f.take(limit.unwrap_or(u64::MAX)));
        loop {
            let mut line = String::new();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| Error::Io(format!("read {}: {e}", file.display())))?;
            // The end, or a line still being written.
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            if let Some(e) = entry(line.trim_end_matches('\n'), opts) {
                if !emit(e) {
                    return Ok(());
                }
            }
        }
        if limit.is_some() {
            break;
        }
    }
    Ok(())
}

/// Send the log of container `id` to `emit` (which returns false once the client is gone):
/// the rotated files, then the live one; with `follow`, new lines (across rotations) until
/// the container no longer runs.
pub fn read(
    containers: &Containers,
    id: &str,
    opts: &LogOptions,
    emit: &mut dyn FnMut(Entry) -> bool,
) -> Result<()> {
    let path = containers.dir(id).join(format!("{id}-json.log"));
    let open = || std::fs::File::open(&path).ok().map(std::io::BufReader::new);
    let mut lines = Vec::new();
    for old in rotated(&path) {
        if let Ok(f) = std::fs::File::open(&old) {
            lines.extend(complete_lines(&mut std::io::BufReader::new(f), &old)?);
        }
    }
    let mut reader = open();
    if let Some(r) = reader.as_mut() {
        lines.extend(complete_lines(r, &path)?);
    }
    let entries: Vec<Entry> = lines.iter().filter_map(|l| entry(l, opts)).collect();
    let skip = opts.tail.map_or(0, |n| entries.len().saturating_sub(n));
    for e in entries.into_iter().skip(skip) {
        if !emit(e) {
            return Ok(());
        }
    }
    if !opts.follow {
        return Ok(());
    }
    // Each new line's entry, unless the client is gone (false).
    let mut send = |lines: &[String]| lines.iter().filter_map(|l| entry(l, opts)).all(&mut *emit);
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
        if !send(&lines) {
            return Ok(());
        }
        if !lines.is_empty() {
            continue;
        }
        // Drained: if the log was rotated meanwhile, go on in the new file.
        let rotated_away = reader.as_ref().is_some_and(|r| {
            let now = std::fs::File::open(&path).ok();
            now.and_then(|f| inode(&f)) != inode(r.get_ref())
        });
        if rotated_away {
            // What reached the old file before the rename, then the new file.
            if let Some(r) = reader.as_mut() {
                if !send(&complete_lines(r, &path)?) {
                    return Ok(());
                }
            }
            reader = open();
            continue;
        }
        let running = containers
            .resolve(id)
            .is_ok_and(|r| r.state.status == Status::Running);
        if !running {
            return Ok(());
        }
        containers.wait_until(id, Duration::from_millis(100), |r| {
            r.is_none_or(|r| r.state.status != Status::Running)
        });
    }
}
