//! The json-file log driver: one JSON object per line of output,
//! `{"log":"text\n","stream":"stdout","time":"RFC 3339 with nanoseconds"}`, rotated at a size
//! (`max-size`, `max-file`) the way Docker rotates: `LOG` is renamed `LOG.1`, `LOG.1` to
//! `LOG.2`, and so on; with one file, the file is truncated instead. The `none` driver
//! writes nothing. A Kubernetes pod's container logs in the kubelet's CRI format instead,
//! `<RFC 3339 nanoseconds> stdout|stderr F|P text` per line (F: the line is complete, P: a
//! part of a longer one), in the file the kubelet names; the kubelet rotates it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Long lines are cut into entries of this size, as Docker does.
pub const MAX_LINE: usize = 16 * 1024;

/// How each entry is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Docker's json-file.
    JsonFile,
    /// The kubelet's CRI log format.
    Cri,
}

pub struct Writer {
    path: PathBuf,
    format: Format,
    /// None: the `none` driver.
    file: Option<File>,
    size: u64,
    /// 0: no rotation.
    max_size: u64,
    max_files: u32,
}

impl Writer {
    pub fn open(path: &Path, format: Format, max_size: u64, max_files: u32) -> Result<Writer> {
        // Readable by root and its group only, as dockerd's json logs: they hold the output.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .with_context(|| format!("open log {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Writer {
            path: path.to_path_buf(),
            format,
            file: Some(file),
            size,
            max_size,
            max_files: max_files.max(1),
        })
    }

    /// The `none` driver: output is not kept.
    pub fn none() -> Writer {
        Writer {
            path: PathBuf::new(),
            format: Format::JsonFile,
            file: None,
            size: 0,
            max_size: 0,
            max_files: 1,
        }
    }

    /// Open the log's path again, a new file if it was moved away (the kubelet rotates a
    /// CRI log by renaming it, then asks for this).
    pub fn reopen(&mut self) -> Result<(), String> {
        if self.file.is_none() {
            return Err("the container keeps no log".into());
        }
        *self = Writer::open(&self.path, self.format, self.max_size, self.max_files)
            .map_err(|e| format!("{e:#}"))?;
        Ok(())
    }

    /// Where the log ends now: the live file's inode and size (None without a log), so
    /// that a reader can replay exactly what came before a given moment.
    pub fn position(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let file = self.file.as_ref()?;
        Some((file.metadata().ok()?.ino(), self.size))
    }

    fn entry(&self, stream: &str, text: &[u8]) -> Vec<u8> {
        let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        if self.format == Format::Cri {
            return cri_entry(&time, stream, text);
        }
        let entry = serde_json::json!({
            "log": String::from_utf8_lossy(text),
            "stream": stream,
            "time": time,
        });
        let mut bytes = serde_json::to_vec(&entry).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Write one entry; a full log is rotated first. Errors are dropped: the container's
    /// output must keep flowing even when the disk is full.
    pub fn line(&mut self, stream: &str, text: &[u8]) {
        if self.file.is_none() {
            return;
        }
        let bytes = self.entry(stream, text);
        if self.max_size > 0 && self.size > 0 && self.size + bytes.len() as u64 > self.max_size {
            if let Err(e) = self.rotate() {
                eprintln!("berth-shim: rotating {}: {e:#}", self.path.display());
            }
        }
        if let Some(file) = self.file.as_mut() {
            if file.write_all(&bytes).is_ok() {
                self.size += bytes.len() as u64;
            }
        }
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> Result<()> {
        if self.max_files < 2 {
            if let Some(file) = self.file.as_ref() {
                file.set_len(0).context("truncate")?;
            }
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.max_files - 1).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1)).context("rename")?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1)).context("rename")?;
        *self = Writer::open(&self.path, self.format, self.max_size, self.max_files)?;
        Ok(())
    }
}

/// A CRI log line: a complete line is tagged F and loses its newline, a cut one P.
fn cri_entry(time: &str, stream: &str, text: &[u8]) -> Vec<u8> {
    let (tag, body) = match text.strip_suffix(b"\n") {
        Some(body) => ("F", body),
        None => ("P", text),
    };
    let mut bytes = format!("{time} {stream} {tag} ").into_bytes();
    bytes.extend_from_slice(body);
    bytes.push(b'\n');
    bytes
}

/// One output stream's text not yet logged (the part after its last newline).
#[derive(Default)]
pub struct Lines(Vec<u8>);

impl Lines {
    /// Add `data`; log every complete line, and cut lines longer than [`MAX_LINE`].
    pub fn push(&mut self, data: &[u8], stream: &str, log: &mut Writer) {
        self.0.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = self.0[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos + 1;
            for chunk in self.0[start..end].chunks(MAX_LINE) {
                log.line(stream, chunk);
            }
            start = end;
        }
        self.0.drain(..start);
        while self.0.len() >= MAX_LINE {
            let rest = self.0.split_off(MAX_LINE);
            log.line(stream, &self.0);
            self.0 = rest;
        }
    }

    /// What is not logged yet (the text after the last newline).
    pub fn pending(&self) -> &[u8] {
        &self.0
    }

    /// Log what is left (the stream ended without a newline).
    pub fn flush(&mut self, stream: &str, log: &mut Writer) {
        if !self.0.is_empty() {
            log.line(stream, &self.0);
            self.0.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| v["log"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn lines_are_split_and_partials_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("c-json.log");
        let mut log = Writer::open(&path, Format::JsonFile, 0, 1).expect("open");
        let mut lines = Lines::default();
        lines.push(b"one\ntw", "stdout", &mut log);
        lines.push(b"o\nthree", "stdout", &mut log);
        assert_eq!(entries(&path), ["one\n", "two\n"]);
        lines.flush("stdout", &mut log);
        assert_eq!(entries(&path), ["one\n", "two\n", "three"]);
    }

    #[test]
    fn the_none_driver_writes_nothing_and_the_position_follows_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut none = Writer::none();
        none.line("stdout", b"lost\n");
        assert_eq!(none.position(), None);
        let path = dir.path().join("c-json.log");
        let mut log = Writer::open(&path, Format::JsonFile, 0, 1).expect("open");
        log.line("stdout", b"one\n");
        let (ino, size) = log.position().expect("position");
        let meta = std::fs::metadata(&path).expect("log");
        assert_eq!(
            (ino, size),
            (std::os::unix::fs::MetadataExt::ino(&meta), meta.len())
        );
    }

    #[test]
    fn cri_lines_are_tagged_full_or_partial() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("0.log");
        let mut log = Writer::open(&path, Format::Cri, 0, 1).expect("open");
        let mut lines = Lines::default();
        lines.push(b"hello\nwor", "stdout", &mut log);
        lines.flush("stdout", &mut log);
        log.line("stderr", b"oops\n");
        let text = std::fs::read_to_string(&path).expect("log");
        let parsed: Vec<(String, String, String)> = text
            .lines()
            .map(|l| {
                let mut parts = l.splitn(4, ' ');
                let time = parts.next().unwrap_or_default();
                assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
                let rest: Vec<String> = parts.map(str::to_string).collect();
                (rest[0].clone(), rest[1].clone(), rest[2].clone())
            })
            .collect();
        let expected = [
            ("stdout", "F", "hello"),
            ("stdout", "P", "wor"),
            ("stderr", "F", "oops"),
        ];
        let expected: Vec<(String, String, String)> = expected
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn reopen_starts_a_new_file_where_the_old_one_was_moved_from() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("0.log");
        let mut log = Writer::open(&path, Format::Cri, 0, 1).expect("open");
        log.line("stdout", b"before\n");
        std::fs::rename(&path, dir.path().join("0.log.1")).expect("rotate");
        log.reopen().expect("reopen");
        log.line("stdout", b"after\n");
        let new = std::fs::read_to_string(&path).expect("new log");
        assert!(
            new.ends_with(" stdout F after\n") && !new.contains("before"),
            "{new}"
        );
        assert!(Writer::none().reopen().is_err());
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("c-json.log");
        let mut log = Writer::open(&path, Format::JsonFile, 200, 3).expect("open");
        for i in 0..20 {
            log.line("stdout", format!("line {i}\n").as_bytes());
        }
        assert!(path.exists());
        assert!(dir.path().join("c-json.log.1").exists());
        assert!(dir.path().join("c-json.log.2").exists());
        assert!(!dir.path().join("c-json.log.3").exists());
        assert!(std::fs::metadata(&path).map(|m| m.len()).unwrap_or(999) <= 200);
        // The newest line is in the live file.
        assert_eq!(entries(&path).last().map(String::as_str), Some("line 19\n"));
    }
}
