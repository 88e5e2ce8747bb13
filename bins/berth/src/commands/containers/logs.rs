//! logs: a container's json-file log, split back into stdout and stderr, followed live.

use std::io::Write;

use anyhow::{Context, Result};
use berth_api::client::{for_each_chunk, query, Client};
use clap::Args;

use super::run::container_path;
use super::stream::{Demux, Stream};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the output.
    #[arg(short, long)]
    follow: bool,
    /// Lines from the end ("all" or a number).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Only lines since a time (RFC 3339, unix seconds, or a duration like 10m).
    #[arg(long)]
    since: Option<String>,
    /// Only lines before a time.
    #[arg(long)]
    until: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    container: String,
}

/// docker's GetTimestamp: a duration ago ("10m", "1h30m"), else the time as given (RFC 3339
/// or unix seconds, which the daemon reads). "0" is the epoch, not a duration, as there.
pub fn timestamp(value: &str) -> Result<String> {
    let ago = (value != "0")
        .then(|| humantime::parse_duration(value).ok())
        .flatten();
    if let Some(ago) = ago {
        let at = std::time::SystemTime::now()
            .checked_sub(ago)
            .context("duration too long")?;
        let secs = at
            .duration_since(std::time::UNIX_EPOCH)
            .context("time before 1970")?;
        return Ok(format!("{}.{:09}", secs.as_secs(), secs.subsec_nanos()));
    }
    Ok(value.to_string())
}

pub async fn logs(client: &Client, args: LogsArgs) -> Result<()> {
    let (_, tty, _) = super::run::tty_and_stdin(client, &args.container).await?;
    let mut q: Vec<(&str, String)> = vec![
        ("stdout", "1".into()),
        ("stderr", "1".into()),
        ("tail", args.tail.clone()),
    ];
    for (key, on) in [("follow", args.follow), ("timestamps", args.timestamps)] {
        if on {
            q.push((key, "1".into()));
        }
    }
    for (key, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = value {
            q.push((key, timestamp(v)?));
        }
    }
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = client
        .get_stream(&container_path(
            &args.container,
            &format!("/logs?{}", query(&pairs)),
        ))
        .await?;
    let mut demux = Demux::new(tty);
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    for_each_chunk(resp, |chunk| {
        for (stream, bytes) in demux.feed(chunk) {
            let out: &mut dyn Write = match stream {
                Stream::Stdout => &mut stdout,
                Stream::Stderr => &mut stderr,
            };
            out.write_all(&bytes)?;
            out.flush()?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}
