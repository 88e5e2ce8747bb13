//! Docker's JSON progress messages (pull, push) shown as the docker CLI shows them: a line
//! per layer with a bar while bytes move when standard output is a terminal, plain status
//! lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;

use anyhow::{bail, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

pub struct Renderer {
    bars: Option<(MultiProgress, HashMap<String, ProgressBar>)>,
    quiet: bool,
    /// Progress goes to standard error (`run` keeps standard output for the container).
    to_stderr: bool,
}

fn status_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg} [{bar:40}] {bytes}/{total_bytes}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Renderer {
    pub fn new(quiet: bool, to_stderr: bool) -> Renderer {
        let terminal = if to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        let bars = (!quiet && terminal).then(|| {
            let target = if to_stderr {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::stdout()
            };
            (MultiProgress::with_draw_target(target), HashMap::new())
        });
        Renderer {
            bars,
            quiet,
            to_stderr,
        }
    }

    fn line(&self, text: &str) {
        if self.to_stderr {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    /// Show one message; an error message fails.
    pub fn show(&mut self, m: &Value) -> Result<()> {
        if let Some(err) = m["error"]
            .as_str()
            .or_else(|| m["errorDetail"]["message"].as_str())
        {
            self.finish();
            bail!("{err}");
        }
        let Some(status) = m["status"].as_str() else {
            return Ok(());
        };
        if self.quiet {
            return Ok(());
        }
        let id = m["id"]
            .as_str()
            .filter(|_| !status.starts_with("Pulling from"));
        let detail = &m["progressDetail"];
        let bytes = detail["total"].as_u64().zip(detail["current"].as_u64());
        match (&mut self.bars, id) {
            (Some((multi, bars)), Some(id)) => {
                let bar = bars.entry(id.to_string()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(0).with_style(status_style()));
                    b.set_prefix(id.to_string());
                    b
                });
                match bytes {
                    Some((total, current)) => {
                        bar.set_style(bytes_style());
                        bar.set_length(total);
                        bar.set_position(current);
                    }
                    None => bar.set_style(status_style()),
                }
                bar.set_message(status.to_string());
            }
            (None, Some(id)) => {
                // Without a terminal, byte counts would be a flood of lines.
                if bytes.is_none() {
                    self.line(&format!("{id}: {status}"));
                }
            }
            (Some((multi, _)), None) => {
                let line = match m["id"].as_str() {
                    Some(tag) => format!("{tag}: {status}"),
                    None => status.to_string(),
                };
                let _ = multi.println(line);
            }
            (None, None) => match m["id"].as_str() {
                Some(tag) => self.line(&format!("{tag}: {status}")),
                None => self.line(status),
            },
        }
        Ok(())
    }

    /// Leave the bars drawn as they last were.
    pub fn finish(&mut self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars.values() {
                bar.abandon();
            }
        }
    }
}
