//! `berth events` (and `system events`): the daemon's event stream, printed as the docker
//! CLI prints it.

use anyhow::{Context, Result};
use berth_api::client::{query, Client};
use berth_api_types::events::Message;
use clap::Args;
use serde_json::{json, Value};

use super::containers::logs::timestamp;
use super::{filters_json, for_each_message};
use crate::format::Template;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Events since a time (RFC 3339, unix seconds, or a duration like 10m).
    #[arg(long)]
    since: Option<String>,
    /// Events until a time (then the stream ends).
    #[arg(long)]
    until: Option<String>,
    /// Filter (type=, event=, container=, image=, network=, volume=, label=...).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Go template ('{{.Type}} {{.Action}}') or json.
    #[arg(long)]
    format: Option<String>,
}

/// The event as a Go template sees moby's events.Message (its Go field names).
fn template_value(m: &Message) -> Value {
    json!({
        "Status": m.status, "ID": m.id, "From": m.from, "Type": m.r#type,
        "Action": m.action, "Actor": {"ID": m.actor.id, "Attributes": m.actor.attributes},
        "Scope": m.scope, "Time": m.time, "TimeNano": m.time_nano,
    })
}

/// The docker CLI's line: time, type, action, actor id, (attributes sorted by key).
fn pretty(m: &Message) -> String {
    let nanos = if m.time_nano != 0 {
        m.time_nano
    } else {
        m.time.saturating_mul(1_000_000_000)
    };
    let mut line = String::new();
    if nanos > 0 {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos.unsigned_abs());
        line = format!("{} ", humantime::format_rfc3339_nanos(at));
    }
    line.push_str(&format!("{} {} {}", m.r#type, m.action, m.actor.id));
    if !m.actor.attributes.is_empty() {
        let attrs: Vec<String> = m
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

pub async fn events(client: &Client, args: EventsArgs) -> Result<()> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (key, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = value {
            pairs.push((key, timestamp(v)?));
        }
    }
    if let Some(f) = filters_json(&args.filter)? {
        pairs.push(("filters", f));
    }
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let template = match args.format.as_deref() {
        None | Some("json") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let json_lines = args.format.as_deref() == Some("json");
    let resp = client
        .get_stream(&format!("/events?{}", query(&borrowed)))
        .await?;
    for_each_message(resp, |line| {
        let m: Message = serde_json::from_slice(line).context("an event from the daemon")?;
        let text = match &template {
            Some(t) => t.render(&template_value(&m))?,
            None if json_lines => serde_json::to_string(&template_value(&m))?,
            None => pretty(&m),
        };
        println!("{text}");
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_line_as_the_docker_cli_prints_it() {
        let m = Message {
            r#type: "container".into(),
            action: "start".into(),
            actor: berth_api_types::events::Actor {
                id: "abc".into(),
                attributes: BTreeMap::from([
                    ("name".into(), "web".into()),
                    ("image".into(), "bb:1".into()),
                ]),
            },
            time_nano: 1_700_000_000_123_456_789,
            ..Message::default()
        };
        assert_eq!(
            pretty(&m),
            "2023-11-14T22:13:20.123456789Z container start abc (image=bb:1, name=web)"
        );
        let t = Template::parse("{{.Type}} {{.Action}} {{.Actor.Attributes.name}}").expect("t");
        assert_eq!(
            t.render(&template_value(&m)).expect("render"),
            "container start web"
        );
    }
}
