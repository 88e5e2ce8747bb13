//! `GET /containers/json`'s filters, as moby's daemon/list.go applies them: status, name,
//! id, label, exited, ancestor, health, volume, network, publish, expose, before, since,
//! is-task and isolation.

use std::collections::HashSet;
use std::time::SystemTime;

use berth_api_types::container::summary::Port;
use berth_engine::containers::{ContainerRecord, Status};
use berth_engine::filters::Filters;

use super::error::{ApiError, ApiResult};

/// The filter names the container list takes (others are a 400, as dockerd's).
pub(super) const ACCEPTED: &[&str] = &[
    "status",
    "name",
    "id",
    "label",
    "exited",
    "ancestor",
    "health",
    "volume",
    "network",
    "publish",
    "expose",
    "before",
    "since",
    "is-task",
    "isolation",
];

/// A container list's filters, checked and with what they refer to looked up.
pub(super) struct ListFilter {
    filters: Filters,
    /// `before=`/`since=`: the creation time of the container named.
    before: Option<SystemTime>,
    since: Option<SystemTime>,
    /// `publish=`/`expose=`: (port, protocol) pairs.
    publish: HashSet<(u16, String)>,
    expose: HashSet<(u16, String)>,
}

impl ListFilter {
    /// `records`: every container, to find those `before`/`since` name.
    pub(super) fn new(filters: Filters, records: &[ContainerRecord]) -> ApiResult<ListFilter> {
        check_health(&filters)?;
        for t in filters.get("is-task") {
            if !matches!(t.as_str(), "true" | "false") {
                return Err(ApiError::bad_request(format!(
                    "Invalid filter 'is-task={t}'"
                )));
            }
        }
        let created_of = |key: &str| -> ApiResult<Option<SystemTime>> {
            let Some(name) = filters.get(key).first() else {
                return Ok(None);
            };
            let found = records.iter().find(|r| {
                r.name == name.trim_start_matches('/')
                    || r.id == *name
                    || r.id.starts_with(name.as_str())
            });
            match found {
                Some(r) => Ok(humantime::parse_rfc3339(&r.created).ok()),
                None => Err(ApiError::not_found(format!("No such container: {name}"))),
            }
        };
        Ok(ListFilter {
            before: created_of("before")?,
            since: created_of("since")?,
            publish: ports(&filters, "publish")?,
            expose: ports(&filters, "expose")?,
            filters,
        })
    }

    /// Pods' containers (the CRI's) are listed only when a Kubernetes label is asked for.
    pub(super) fn pods_asked(&self) -> bool {
        self.filters
            .get("label")
            .iter()
            .any(|l| l.starts_with("io.kubernetes."))
    }

    /// Filters that name stopped containers list them without `all`, as moby's.
    pub(super) fn asks_for_stopped(&self) -> bool {
        self.filters.has("status") || self.filters.has("exited")
    }

    /// Whether `r`, with `ports` (as the list shows them), passes every filter.
    pub(super) fn matches(&self, r: &ContainerRecord, ports: &[Port]) -> bool {
        let f = &self.filters;
        let created = humantime::parse_rfc3339(&r.created).ok();
        f.any_of("status", |s| s == r.status_word())
            && f.any_of("health", |h| h == health_word(r))
            && f.any_of("name", |n| r.name.contains(n.trim_start_matches('/')))
            && f.any_of("id", |i| r.id.starts_with(i))
            && f.any_of("exited", |c| {
                r.state.status == Status::Exited
                    && !r.state.restarting
                    && c.parse() == Ok(r.state.exit_code)
            })
            && f.any_of("ancestor", |a| {
                a == r.config.image
                    || r.image.starts_with(a.trim_start_matches("sha256:"))
                    || r.image == a
            })
            && f.any_of("volume", |v| {
                r.host
                    .volumes
                    .iter()
                    .any(|m| m.name == v || m.destination == v)
            })
            && f.any_of("network", |n| on_network(r, n))
            // No container of berth's is a swarm task; every one has the default isolation.
            && f.any_of("is-task", |t| t == "false")
            && f.any_of("isolation", |i| i == "default")
            && self.before.is_none_or(|b| created.is_some_and(|c| c < b))
            && self.since.is_none_or(|s| created.is_some_and(|c| c > s))
            && self.ports_match(ports)
            && f.labels_match(&r.config.labels.clone().unwrap_or_default())
    }

    /// `publish=`/`expose=`: a published host port or a container port among those asked.
    fn ports_match(&self, ports: &[Port]) -> bool {
        if self.publish.is_empty() && self.expose.is_empty() {
            return true;
        }
        ports.iter().any(|p| {
            self.publish.contains(&(p.public_port, p.r#type.clone()))
                || self.expose.contains(&(p.private_port, p.r#type.clone()))
        })
    }
}

/// Whether `r` is on network `wanted` (its name, or a prefix of its id), as moby matches
/// NetworkSettings.Networks.
fn on_network(r: &ContainerRecord, wanted: &str) -> bool {
    match r.network_mode() {
        mode @ ("host" | "none") => mode == wanted,
        _ => r
            .joins()
            .iter()
            .any(|j| j.name == wanted || (j.network != "bridge" && j.network.starts_with(wanted))),
    }
}

/// `publish=`/`expose=` values: `PORT[-END][/PROTO]` (tcp by default), as moby's portOp.
fn ports(filters: &Filters, key: &str) -> ApiResult<HashSet<(u16, String)>> {
    let mut out = HashSet::new();
    for value in filters.get(key) {
        if value.contains(':') {
            return Err(ApiError::bad_request(format!(
                "filter for '{key}' should not contain ':': {value}"
            )));
        }
        let (range, proto) = value.split_once('/').unwrap_or((value, "tcp"));
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let bad = || {
            ApiError::bad_request(format!(
                "error while looking up for {key} {value}: invalid port range"
            ))
        };
        let first: u16 = first.parse().map_err(|_| bad())?;
        let last: u16 = last.parse().map_err(|_| bad())?;
        if first > last {
            return Err(bad());
        }
        out.extend((first..=last).map(|p| (p, proto.to_lowercase())));
    }
    Ok(out)
}

/// The health `docker ps --filter health=` compares: none without a health check.
fn health_word(r: &ContainerRecord) -> &'static str {
    r.state
        .health
        .as_ref()
        .map_or("none", |h| h.status.as_str())
}

/// `--filter health=` takes moby's words only.
fn check_health(filters: &Filters) -> ApiResult<()> {
    const VALID: [&str; 4] = ["none", "starting", "healthy", "unhealthy"];
    match filters
        .get("health")
        .iter()
        .find(|v| !VALID.contains(&v.as_str()))
    {
        Some(bad) => Err(ApiError::bad_request(format!(
            "invalid filter 'health={bad}': invalid value for health ({bad}): must be one of {}",
            VALID.join(", ")
        ))),
        None => Ok(()),
    }
}
