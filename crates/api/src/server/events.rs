//! GET /events: moby's event messages as JSON lines, the kept ones from `since`, then live
//! ones until `until` (or until the client goes), filtered by type, event, container, image
//! and label.

use berth_api_types::events::{Actor, Message};
use berth_engine::events::Event;
use berth_engine::filters::Filters;
use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::error::ApiResult;
use super::query::time_bound;
use super::Ctx;

/// A time bound: unix seconds (fractions allowed; what the docker CLI sends) or RFC 3339.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn matches(filters: &Filters, e: &Event) -> bool {
    let any = |key: &str, f: &dyn Fn(&str) -> bool| {
        let values = filters.get(key);
        values.is_empty() || values.iter().any(|v| f(v))
    };
    let attr = |k: &str| e.attributes.get(k).map(String::as_str).unwrap_or_default();
    // exec_start: CMD is the event exec_start.
    let action = e.action.split(':').next().unwrap_or_default();
    any("type", &|t| t == e.kind)
        && any("event", &|a| a == action)
        && any("container", &|c| {
            e.kind == "container" && (e.id.starts_with(c) || attr("name") == c)
        })
        && any("image", &|i| {
            attr("image") == i || attr("name") == i || (e.kind == "image" && e.id.contains(i))
        })
        && any("network", &|n| {
            e.kind == "network" && (e.id.starts_with(n) || attr("name") == n)
        })
        && any("volume", &|v| e.kind == "volume" && e.id == v)
        && filters.labels_match(&e.attributes)
}

fn message(e: &Event) -> Message {
    Message {
        // The members of older API versions, which the docker CLI still reads.
        status: e.action.clone(),
        id: e.id.clone(),
        from: e.attributes.get("image").cloned().unwrap_or_default(),
        r#type: e.kind.to_string(),
        action: e.action.clone(),
        actor: Actor {
            id: e.id.clone(),
            attributes: e.attributes.clone(),
        },
        scope: "local".into(),
        time: e.time_nano / 1_000_000_000,
        time_nano: e.time_nano,
    }
}

pub(super) async fn events(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let since = time_bound(ctx.query.get("since"))?;
    let until = time_bound(ctx.query.get("until"))?;
    let filters = Filters::parse(
        ctx.query.get("filters"),
        &[
            "type",
            "event",
            "container",
            "image",
            "label",
            "network",
            "volume",
        ],
    )?;
    let (resp, out) = body::streamed_async("application/json");
    let engine = ctx.state.engine.clone();
    let version = ctx.version;
    let matches = move |filters: &Filters, e: &Event| {
        matches(filters, e) && super::compat::event_shown(e.kind, &e.action, version)
    };
    tokio::task::spawn_blocking(move || {
        let (past, live) = engine.events().subscribe();
        let in_range = |e: &Event| {
            let t = e.time_nano as f64 / 1e9;
            until.is_none_or(|u| t <= u)
        };
        let send = |e: &Event| {
            out.blocking_send(Ok(body::message_line(&message(e))))
                .is_ok()
        };
        if let Some(since) = since {
            for e in past.iter().filter(|e| e.time_nano as f64 / 1e9 >= since) {
                if in_range(e) && matches(&filters, e) && !send(e) {
                    return;
                }
            }
        }
        loop {
            let left = until.map(|u| u - now());
            if left.is_some_and(|l| l <= 0.0) || out.is_closed() {
                return;
            }
            let wait = left.map_or(1.0, |l| l.min(1.0));
            match live.recv_timeout(std::time::Duration::from_secs_f64(wait)) {
                Ok(e) => {
                    if in_range(&e) && matches(&filters, &e) && !send(&e) {
                        return;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    });
    let mut resp = resp;
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}
