//! The json-file log driver: one JSON object per line of output,
//! `{"log":"text\n","stream":"stdout","time":"RFC 3339 with nanoseconds"}`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

/// The log file, shared by the stdout and stderr pumps.
#[derive(Clone)]
pub struct Writer(Arc<Mutex<File>>);

impl Writer {
    pub fn open(path: &Path) -> Result<Writer> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("open log {}", path.display()))?;
        Ok(Writer(Arc::new(Mutex::new(f))))
    }

    fn line(&self, stream: &str, text: &[u8]) {
        let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let entry = serde_json::json!({
            "log": String::from_utf8_lossy(text),
            "stream": stream,
            "time": time,
        });
        let mut bytes = serde_json::to_vec(&entry).unwrap_or_default();
        bytes.push(b'\n');
        if let Ok(mut f) = self.0.lock() {
            let _ = f.write_all(&bytes);
        }
    }
}

/// Long lines are cut into entries of this size, as Docker does.
const MAX_LINE: usize = 16 * 1024;

/// Copy `fd` to the log until it closes, one entry per line.
pub fn pump(fd: OwnedFd, stream: &'static str, writer: Writer) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(MAX_LINE, File::from(fd));
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = match (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
            {
                Ok(n) => n,
                Err(_) => break,
            };
            if n == 0 {
                break;
            }
            writer.line(stream, &line);
        }
    })
}
