//! Logs in runc's formats, because callers parse them: podman and containerd read the
//! runtime's --log file (json: `{"level":"error","msg":"...","time":"..."}`) to report why a
//! container failed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::Layer;

use crate::cli::LogFormat;

struct RuncFormat {
    out: Mutex<Box<dyn Write + Send>>,
    format: LogFormat,
    max: Level,
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncFormat {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        if *event.metadata().level() > self.max {
            return;
        }
        let mut msg = Message::default();
        event.record(&mut msg);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let line = match self.format {
            LogFormat::Json => {
                serde_json::json!({"level": level, "msg": msg.0, "time": time}).to_string()
            }
            LogFormat::Text => format!("time={time:?} level={level} msg={:?}", msg.0),
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Install the logger. Returns whether logs go to stderr (so errors are not printed twice).
pub fn init(path: Option<&Path>, format: LogFormat, debug: bool) -> anyhow::Result<bool> {
    let out: Box<dyn Write + Send> = match path {
        Some(p) => Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("open log file {}", p.display()))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let layer = RuncFormat {
        out: Mutex::new(out),
        format,
        max: if debug { Level::DEBUG } else { Level::WARN },
    };
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .context("install logger")?;
    Ok(path.is_none())
}
