//! The container routes: create, start, list, inspect, logs, wait, stop, kill, restart,
//! remove, attach and resize (exec has its own module).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use berth_api_types::container;
use berth_api_types::container::inspect::{
    EndpointIpamConfig, EndpointSettings, MountPoint, PortBinding, PortMap,
};
use berth_api_types::container::summary::{Port, SummaryHostConfig, SummaryNetworkSettings};
use berth_engine::containers::health::HealthStatus;
use berth_engine::containers::host::LogDriver;
use berth_engine::containers::logs::{Entry, LogOptions};
use berth_engine::containers::stream::{AttachOptions, Attached};
use berth_engine::containers::{ContainerRecord, Status, WaitCondition};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::body::{self, Body};
use super::compat;
use super::error::{ApiError, ApiResult};
use super::Ctx;
use crate::humanize::now_unix;

/// The largest create request accepted (a config, not data).
const MAX_BODY: usize = 4 * 1024 * 1024;

fn unix_of(rfc3339: Option<&str>) -> i64 {
    berth_engine::images::unix_time(rfc3339)
}

fn status_text(r: &ContainerRecord) -> String {
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!(
            "Up {}{}",
            crate::humanize::duration(now_unix() - unix_of(r.state.started_at.as_deref())),
            match &r.state.health {
                _ if r.state.paused => " (Paused)".to_string(),
                Some(h) if h.status == HealthStatus::Starting => " (health: starting)".into(),
                Some(h) => format!(" ({})", h.status.as_str()),
                None => String::new(),
            }
        ),
        Status::Exited if r.state.restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            crate::humanize::duration(now_unix() - unix_of(r.state.finished_at.as_deref()))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            crate::humanize::duration(now_unix() - unix_of(r.state.finished_at.as_deref()))
        ),
    }
}

fn command(r: &ContainerRecord) -> String {
    let mut args = r.config.entrypoint.clone().unwrap_or_default();
    args.extend(r.config.cmd.clone().unwrap_or_default());
    args.join(" ")
}

/// The writable layer's size, and the image's below it (ps -s, system df).
fn sizes_of(e: &berth_engine::Engine, r: &ContainerRecord) -> (u64, u64) {
    let image = e.images.resolve(&r.image).map_or(0, |i| i.record.size);
    (e.container_size(&r.id), image)
}

/// A container as `system df` lists it: with its sizes.
pub(super) fn sized_summary(
    e: &berth_engine::Engine,
    r: &ContainerRecord,
    version: crate::version::ApiVersion,
) -> container::Summary {
    summary(r, Some(sizes_of(e, r)), version)
}

/// A container as `GET /containers/json` lists it to a client of `version`.
fn summary(
    r: &ContainerRecord,
    sizes: Option<(u64, u64)>,
    version: crate::version::ApiVersion,
) -> container::Summary {
    let (size_rw, size_root_fs) = sizes.map_or((0, 0), |(rw, image)| (rw, rw + image));
    let mut listed = container::Summary {
        id: r.id.clone(),
        names: vec![format!("/{}", r.name)],
        image: r.config.image.clone(),
        image_id: r.image.clone(),
        command: command(r),
        created: unix_of(Some(&r.created)),
        ports: port_list(r),
        size_rw: i64::try_from(size_rw).unwrap_or(i64::MAX),
        size_root_fs: i64::try_from(size_root_fs).unwrap_or(i64::MAX),
        labels: r.config.labels.clone().unwrap_or_default(),
        state: r.status_word().to_string(),
        status: status_text(r),
        host_config: SummaryHostConfig {
            network_mode: r.network_mode.clone(),
            annotations: r.host_config.annotations.clone(),
        },
        network_settings: SummaryNetworkSettings {
            networks: networks(r),
        },
        mounts: mounts(r),
    };
    compat::container_summary(&mut listed, version);
    listed
}

pub(super) async fn create(ctx: &Ctx, body_in: Incoming) -> ApiResult<Response<Body>> {
    let value = body::read_json(body_in, MAX_BODY).await?;
    let mut req = container::decode::create_request(&value).map_err(berth_engine::Error::from)?;
    compat::create_request(&mut req, ctx.version);
    let mut early = Vec::from_iter(compat::volume_driver_warning(&req, ctx.version));
    early.extend(
        compat::migrate_interface_sysctls(&mut req, ctx.version).map_err(ApiError::bad_request)?,
    );
    let name = ctx.query.get("name").map(String::from);
    let platform = ctx.query.platform()?;
    let (record, mut warnings) = ctx
        .blocking(move |e| Ok(e.create(&req, name.as_deref(), platform.as_ref())?))
        .await?;
    warnings.splice(0..0, early);
    Ok(body::json(
        StatusCode::CREATED,
        &container::CreateResponse {
            id: record.id,
            warnings,
        },
    ))
}

pub(super) async fn start(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let started = ctx.blocking(move |e| Ok(e.start_container(&name)?)).await?;
    Ok(body::empty(if started {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }))
}

pub(super) async fn list(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let all = ctx.query.bool("all");
    let filters = berth_engine::filters::Filters::parse(
        ctx.query.get("filters"),
        super::list_filters::ACCEPTED,
    )?;
    let limit: Option<usize> = ctx
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l: &usize| *l > 0);
    // -n/-l (a limit) include stopped containers, as moby does.
    let all = all || limit.is_some();
    let size = ctx.query.bool("size");
    let (records, filter) = ctx
        .blocking(move |e| {
            let all_records = e.containers().list();
            let filter = super::list_filters::ListFilter::new(filters, &all_records)?;
            let list: Vec<_> = all_records
                .into_iter()
                .filter(|r| filter.pods_asked() || !r.in_pod())
                .collect();
            let sizes: Vec<Option<(u64, u64)>> =
                list.iter().map(|r| size.then(|| sizes_of(e, r))).collect();
            Ok((list.into_iter().zip(sizes).collect::<Vec<_>>(), filter))
        })
        .await?;
    let mut out = Vec::new();
    for (r, sizes) in records {
        // A restarting container counts as running (moby's State.Running).
        if !all
            && r.state.status != Status::Running
            && !r.state.restarting
            && !filter.asks_for_stopped()
        {
            continue;
        }
        if !filter.matches(&r, &port_list(&r)) {
            continue;
        }
        out.push(summary(&r, sizes, ctx.version));
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    Ok(body::json(StatusCode::OK, &out))
}

pub(super) async fn inspect(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let (r, dir, execs) = ctx
        .blocking(move |e| {
            let r = e.containers().resolve(&name)?;
            let dir = e.containers().dir(&r.id);
            let execs = e.execs.of_container(&r.id);
            Ok((r, dir, execs))
        })
        .await?;
    let exec_ids = (!execs.is_empty()).then_some(execs);
    let mut resp = inspect_response(&r, &dir, exec_ids);
    compat::inspect_response(&mut resp, ctx.version);
    Ok(body::json(StatusCode::OK, &resp))
}

fn inspect_response(
    r: &ContainerRecord,
    dir: &std::path::Path,
    exec_ids: Option<Vec<String>>,
) -> container::InspectResponse {
    let mut args = r.config.entrypoint.clone().unwrap_or_default();
    args.extend(r.config.cmd.clone().unwrap_or_default());
    let path = if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    };
    let data = [
        ("UpperDir", "upper"),
        ("WorkDir", "work"),
        ("MergedDir", "rootfs"),
    ]
    .into_iter()
    .map(|(key, sub)| (key.to_string(), dir.join(sub).display().to_string()))
    .collect();
    container::InspectResponse {
        id: r.id.clone(),
        created: r.created.clone(),
        path,
        args,
        state: state(r),
        image: r.image.clone(),
        resolv_conf_path: etc_path(r, dir, "resolv.conf"),
        hostname_path: etc_path(r, dir, "hostname"),
        hosts_path: etc_path(r, dir, "hosts"),
        log_path: log_path(r, dir),
        name: format!("/{}", r.name),
        restart_count: r.restart_count,
        driver: "overlay2".into(),
        platform: "linux".into(),
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids,
        host_config: host_config(r),
        graph_driver: berth_api_types::storage::GraphDriverData {
            data,
            name: "overlay2".into(),
        },
        size_rw: None,
        size_root_fs: None,
        mounts: mounts(r),
        config: config(r),
        network_settings: network_settings(r),
    }
}

/// Go's zero time, which dockerd shows for a time not reached yet.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn state(r: &ContainerRecord) -> container::State {
    let s = &r.state;
    container::State {
        status: r.status_word().to_string(),
        running: s.status == Status::Running || s.restarting,
        paused: s.paused,
        restarting: s.restarting,
        oom_killed: s.oom_killed,
        dead: false,
        pid: s.pid,
        exit_code: s.exit_code,
        error: s.error.clone(),
        started_at: s.started_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
        finished_at: s.finished_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
        health: s.health.as_ref().map(health),
    }
}

fn health(h: &berth_engine::containers::health::Health) -> container::Health {
    container::Health {
        status: h.status.as_str().to_string(),
        failing_streak: h.failing_streak,
        log: h
            .log
            .iter()
            .map(|l| container::HealthcheckResult {
                start: l.start.clone(),
                end: l.end.clone(),
                exit_code: l.exit_code,
                output: l.output.clone(),
            })
            .collect(),
    }
}

/// Inspect's Config: the create request merged with the image's, as berthd keeps it.
fn config(r: &ContainerRecord) -> container::Config {
    let anonymous_volumes = r
        .host
        .volumes
        .iter()
        .filter(|v| !v.named)
        .map(|v| (v.destination.clone(), Value::Object(Default::default())));
    container::Config {
        hostname: r.hostname(),
        domainname: r.net.domainname.clone(),
        user: r.config.user.clone().unwrap_or_default(),
        exposed_ports: r
            .net
            .exposed
            .iter()
            .map(|k| (k.clone(), Value::Object(Default::default())))
            .collect(),
        tty: r.config.tty,
        open_stdin: r.config.open_stdin,
        stdin_once: r.config.stdin_once,
        env: r.config.env.clone(),
        cmd: r.config.cmd.clone().map(container::StrSlice),
        healthcheck: r.config.healthcheck.clone(),
        image: r.config.image.clone(),
        volumes: anonymous_volumes.collect(),
        working_dir: r.config.working_dir.clone().unwrap_or_default(),
        entrypoint: r.config.entrypoint.clone().map(container::StrSlice),
        labels: r.config.labels.clone().unwrap_or_default(),
        stop_signal: r.config.stop_signal.clone().unwrap_or_default(),
        stop_timeout: r.config.stop_timeout,
        ..container::Config::default()
    }
}

/// Where the log is (none without one, as dockerd shows it).
fn log_path(r: &ContainerRecord, dir: &std::path::Path) -> String {
    match r.host.log_driver {
        LogDriver::JsonFile => dir.join(format!("{}-json.log", r.id)).display().to_string(),
        LogDriver::None => String::new(),
    }
}

/// The HostConfig the client sent, with what berthd decided filled in (dockerd's defaults
/// for the namespace modes, /dev/shm and the OOM killer; `container:NAME` with the id).
fn host_config(r: &ContainerRecord) -> container::HostConfig {
    let ns = &r.host.namespaces;
    let memory = r.host.resources.as_ref().map(|res| &res["memory"]);
    let memory_i64 = |key: &str| memory.and_then(|m| m[key].as_i64());
    let mut host = r.host_config.clone();
    host.network_mode = r.network_mode.clone();
    host.runtime = r.runtime.clone();
    host.privileged = r.host.privileged;
    host.init = Some(r.host.init);
    host.readonly_rootfs = r.host.readonly_rootfs;
    host.auto_remove = r.auto_remove();
    host.log_config = container::LogConfig {
        driver: r.host.log_driver.name().to_string(),
        config: r.log.options(),
    };
    host.pid_mode = ns.pid_mode();
    host.ipc_mode = ns.ipc_mode();
    host.uts_mode = if ns.uts_host { "host" } else { "" }.into();
    host.cgroupns_mode = if ns.cgroupns_private {
        "private"
    } else {
        "host"
    }
    .into();
    host.shm_size = ns.shm_bytes();
    host.group_add = r.host.group_add.clone();
    host.oom_score_adj = r.host.oom_score_adj;
    host.oom_kill_disable = Some(
        memory
            .and_then(|m| m["disableOOMKiller"].as_bool())
            .unwrap_or(false),
    );
    host.memory_reservation = memory_i64("reservation").unwrap_or(0);
    host.memory_swappiness = memory_i64("swappiness");
    host.blkio_weight = r.host.blkio.weight;
    host.restart_policy = container::RestartPolicy {
        name: if r.restart.is_none() {
            "no".into()
        } else {
            r.restart.name.clone()
        },
        maximum_retry_count: i64::from(r.restart.max_retries),
    };
    host.sysctls = r.host.sysctls.clone();
    host
}

/// Inspect's Mounts: the bind mounts, as Docker lists them.
/// The container's /etc file written for its network (none before its first start on a
/// bridge).
fn etc_path(r: &ContainerRecord, dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    if r.on_network() && path.exists() {
        path.display().to_string()
    } else {
        String::new()
    }
}

/// NetworkSettings.Networks: each network the container is on, with its endpoint there
/// as dockerd shows it (empty addresses while the container does not run).
fn networks(r: &ContainerRecord) -> BTreeMap<String, EndpointSettings> {
    let mut out = BTreeMap::new();
    if r.network_mode().starts_with("container:") {
        return out;
    }
    if !r.on_network() {
        // host or none: an endpoint with nothing set, as dockerd's.
        out.insert(r.network_mode().to_string(), EndpointSettings::default());
        return out;
    }
    for join in r.joins() {
        let network_id = match join.network.as_str() {
            "bridge" => berth_engine::containers::net::network_id("bridge"),
            user => user.to_string(),
        };
        let ep = r.endpoint_on(&join.network);
        // Names are answered on user-defined networks only (as dockerd's DNSNames).
        let dns_names = (join.network != "bridge")
            .then(|| berth_engine::containers::net::dns_names(r, &join.aliases));
        let settings = EndpointSettings {
            ipam_config: (join.ip.is_some() || join.ip6.is_some()).then(|| EndpointIpamConfig {
                ipv4_address: join.ip.map(|ip| ip.to_string()).unwrap_or_default(),
                ipv6_address: join.ip6.map(|ip| ip.to_string()).unwrap_or_default(),
                ..EndpointIpamConfig::default()
            }),
            aliases: (!join.aliases.is_empty()).then(|| join.aliases.clone()),
            network_id,
            dns_names,
            gw_priority: join.gw_priority,
            driver_opts: berth_engine::containers::net::endpoint_driver_opts(&join.sysctls),
            ..endpoint_addresses(ep)
        };
        out.insert(join.name.clone(), settings);
    }
    out
}

/// NetworkSettings.Ports: each exposed port with its host bindings (null: not published),
/// while the container runs.
fn ports_map(r: &ContainerRecord) -> PortMap {
    let mut out = PortMap::new();
    if r.endpoints.is_empty() {
        return out;
    }
    for key in &r.net.exposed {
        out.insert(key.clone(), None);
    }
    for p in r.endpoints.iter().flat_map(|e| &e.ports) {
        let binding = PortBinding {
            host_ip: p.host_ip.clone(),
            host_port: p.host_port.to_string(),
        };
        out.entry(format!("{}/{}", p.port, p.proto))
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    out
}

/// The list's Ports (`docker ps`): published ports, then exposed ones.
pub(super) fn port_list(r: &ContainerRecord) -> Vec<Port> {
    let published = r.endpoints.iter().flat_map(|e| &e.ports);
    let mut out: Vec<Port> = published
        .clone()
        .map(|p| Port {
            ip: p.host_ip.clone(),
            private_port: p.port,
            public_port: p.host_port,
            r#type: p.proto.clone(),
        })
        .collect();
    for key in &r.net.exposed {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let is_published = published
            .clone()
            .any(|p| p.port.to_string() == port && p.proto == proto);
        if !is_published {
            out.push(Port {
                private_port: port.parse().unwrap_or(0),
                r#type: proto.to_string(),
                ..Port::default()
            });
        }
    }
    out
}

/// An endpoint's addresses as EndpointSettings shows them (empty: no endpoint of its own);
/// NetworkSettings repeats the first network's at its top level.
fn endpoint_addresses(ep: Option<&berth_engine::containers::net::Endpoint>) -> EndpointSettings {
    EndpointSettings {
        mac_address: ep.map(|e| e.mac.clone()).unwrap_or_default(),
        endpoint_id: ep.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        gateway: ep.map(|e| e.gateway.to_string()).unwrap_or_default(),
        ip_address: ep.map(|e| e.ip.to_string()).unwrap_or_default(),
        ip_prefix_len: ep.map_or(0, |e| e.prefix),
        ipv6_gateway: ep
            .and_then(|e| e.gateway6.map(|g| g.to_string()))
            .unwrap_or_default(),
        global_ipv6_address: ep
            .and_then(|e| e.ip6.map(|ip| ip.to_string()))
            .unwrap_or_default(),
        global_ipv6_prefix_len: ep.filter(|e| e.ip6.is_some()).map_or(0, |e| e.prefix6),
        ..EndpointSettings::default()
    }
}

fn network_settings(r: &ContainerRecord) -> container::NetworkSettings {
    let ep = r.endpoint();
    let own = endpoint_addresses(ep);
    container::NetworkSettings {
        sandbox_id: ep.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        sandbox_key: ep
            .map(|e| e.netns.display().to_string())
            .unwrap_or_default(),
        ports: ports_map(r),
        endpoint_id: own.endpoint_id,
        gateway: own.gateway,
        ip_address: own.ip_address,
        ip_prefix_len: own.ip_prefix_len,
        ipv6_gateway: own.ipv6_gateway,
        global_ipv6_address: own.global_ipv6_address,
        global_ipv6_prefix_len: own.global_ipv6_prefix_len,
        mac_address: own.mac_address,
        networks: networks(r),
        ..container::NetworkSettings::default()
    }
}

/// Inspect's and the list's Mounts: binds, then volumes, then `--mount type=tmpfs` (not
/// `--tmpfs`, which moby does not list either).
fn mounts(r: &ContainerRecord) -> Vec<MountPoint> {
    let binds = r
        .host
        .mounts
        .iter()
        .filter(|m| m["type"] == "bind")
        .map(bind_mount);
    let volumes = r.host.volumes.iter().map(|v| MountPoint {
        r#type: "volume".into(),
        name: v.name.clone(),
        source: v.source.display().to_string(),
        destination: v.destination.clone(),
        driver: "local".into(),
        mode: v.mode.clone(),
        rw: !v.read_only,
        propagation: String::new(),
    });
    // `--mount type=tmpfs` (not `--tmpfs`, which moby does not list either).
    let tmpfs = r
        .host_config
        .mounts
        .iter()
        .filter(|m| m.kind == "tmpfs")
        .map(|m| MountPoint {
            r#type: "tmpfs".into(),
            destination: m.target.clone(),
            rw: !m.read_only,
            ..MountPoint::default()
        });
    binds.chain(volumes).chain(tmpfs).collect()
}

/// A bind mount from its OCI mount: read-only and its propagation from the options.
fn bind_mount(m: &Value) -> MountPoint {
    let options: Vec<&str> = m["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let read_only = options.iter().any(|o| *o == "ro" || *o == "rro");
    let propagation = options
        .iter()
        .find(|o| o.ends_with("shared") || o.ends_with("slave") || o.ends_with("private"))
        .unwrap_or(&"rprivate");
    MountPoint {
        r#type: "bind".into(),
        source: m["source"].as_str().unwrap_or_default().to_string(),
        destination: m["destination"].as_str().unwrap_or_default().to_string(),
        mode: if read_only { "ro" } else { "" }.into(),
        rw: !read_only,
        propagation: propagation.to_string(),
        ..MountPoint::default()
    }
}

pub(super) async fn wait(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let condition = match ctx.query.get("condition").unwrap_or("not-running") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: {other:?}"
            )))
        }
    };
    // Fail early for an unknown container, before the 200 goes out; the wait counts from
    // the container as it is now.
    let record = ctx
        .blocking(move |e| Ok(e.containers().resolve(&name)?))
        .await?;
    let (resp, out) = body::streamed_async("application/json");
    let engine = ctx.state.engine.clone();
    // The docker CLI drops its next-exit wait once `run -d` has started the container:
    // the waiting worker must not outlive the client.
    let cancel = Arc::new(AtomicBool::new(false));
    let waiting = {
        let (engine, cancel) = (engine.clone(), cancel.clone());
        tokio::task::spawn_blocking(move || engine.wait_container(&record, condition, &cancel))
    };
    tokio::spawn(async move {
        let result = tokio::select! {
            result = waiting => result,
            () = out.closed() => {
                cancel.store(true, Ordering::Relaxed);
                engine.containers().wake_waiters();
                return;
            }
        };
        let v = match result {
            Ok(Ok(code)) => wait_response(code.into(), None),
            Ok(Err(e)) => wait_response(-1, Some(e.to_string())),
            Err(e) => wait_response(-1, Some(e.to_string())),
        };
        let _ = out.send(Ok(body::message_line(&v))).await;
    });
    Ok(resp)
}

/// The wait's answer: an Error only when waiting failed (omitempty in moby).
fn wait_response(status_code: i64, error: Option<String>) -> container::WaitResponse {
    container::WaitResponse {
        error: error.map(|message| container::WaitExitError { message }),
        status_code,
    }
}

fn stop_timeout(ctx: &Ctx) -> ApiResult<Option<i64>> {
    match ctx.query.get("t") {
        Some(t) => Ok(Some(t.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!("invalid timeout {t:?}"))
        })?)),
        None => Ok(None),
    }
}

pub(super) async fn stop(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let t = stop_timeout(ctx)?;
    let stopped = ctx
        .blocking(move |e| Ok(e.stop_container(&name, t)?))
        .await?;
    Ok(body::empty(if stopped {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }))
}

pub(super) async fn kill(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let signal = ctx.query.get("signal").unwrap_or("KILL").to_string();
    ctx.blocking(move |e| Ok(e.kill_container(&name, &signal)?))
        .await?;
    Ok(body::empty(StatusCode::NO_CONTENT))
}

pub(super) async fn remove(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    if ctx.query.bool("link") {
        // `docker rm --link NAME`: a container's own name is its default link name, which
        // dockerd refuses to remove (a link's `/parent/name` never reaches this route).
        return Err(ApiError::bad_request(
            "Conflict, cannot remove the default link name of the container",
        ));
    }
    // -v: its anonymous volumes go too.
    let force = ctx.query.bool("force");
    let volumes = ctx.query.bool("v");
    ctx.blocking(move |e| Ok(e.remove_container_with(&name, force, volumes)?))
        .await?;
    Ok(body::empty(StatusCode::NO_CONTENT))
}

/// dockerd's answer for a logging driver it cannot read back (`none`).
fn check_readable(r: &ContainerRecord) -> ApiResult<()> {
    match r.host.log_driver {
        LogDriver::JsonFile => Ok(()),
        LogDriver::None => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "configured logging driver does not support reading",
        )),
    }
}

/// One log entry as a frame of Docker's multiplexed stream.
fn frame(e: &Entry) -> Bytes {
    Bytes::from(berth_shim_protocol::frame(e.stream, &e.bytes))
}

/// A logs time bound; 0 is no bound.
fn time_bound(v: Option<&str>) -> ApiResult<Option<f64>> {
    Ok(super::query::time_bound(v)?.filter(|t| *t > 0.0))
}

pub(super) async fn logs(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let q = &ctx.query;
    let opts = LogOptions {
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        tail: match q.get("tail") {
            None | Some("all") | Some("") => None,
            Some(n) => Some(
                n.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid tail {n:?}")))?,
            ),
        },
        since: time_bound(q.get("since"))?,
        until: time_bound(q.get("until"))?,
        follow: q.bool("follow"),
        timestamps: q.bool("timestamps"),
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let record = ctx
        .blocking(move |e| Ok(e.containers().resolve(&name)?))
        .await?;
    check_readable(&record)?;
    let id = record.id;
    let (resp, out) = body::streamed_async("application/vnd.docker.multiplexed-stream");
    let engine = ctx.state.engine.clone();
    tokio::task::spawn_blocking(move || {
        let mut emit = |e: Entry| out.blocking_send(Ok(frame(&e))).is_ok();
        if let Err(err) =
            berth_engine::containers::logs::read(engine.containers(), &id, &opts, &mut emit)
        {
            tracing::error!("logs of {id}: {err}");
        }
    });
    Ok(resp)
}

/// POST /containers/{id}/attach: moby's hijacked stream (101, then the output as frames or
/// raw for a terminal; the client's input to the container when it was created with -i).
/// An attach to a container that does not run yet begins when it starts (`docker run`
/// and `docker start -a` attach first). With `logs=1` the log so far comes first (then,
/// with `stream=1`, the live output from where the log ended, nothing lost or repeated).
pub(super) async fn attach(
    ctx: &Ctx,
    name: String,
    req: hyper::Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let q = &ctx.query;
    let detach_keys = super::hijack::parse_detach_keys(q.get("detachKeys"))?;
    let opts = AttachOptions {
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        logs: q.bool("logs"),
    };
    let stream = q.bool("stream");
    let (record, attached) = ctx
        .blocking(move |e| {
            let record = e.containers().resolve(&name)?;
            if opts.logs {
                check_readable(&record)?;
            }
            if !stream {
                e.containers().event(&record.id, "attach", &[]);
                return Ok((record, None));
            }
            let (record, attached) = e.attach_container(&record.id, opts)?;
            let up_to = match &attached {
                Attached::Now(_, position) => *position,
                // Not running: the log as it is now, what the next start writes comes live.
                Attached::AtStart(_) if opts.logs => {
                    berth_engine::containers::logs::position(e.containers(), &record.id)
                }
                Attached::AtStart(_) => None,
            };
            Ok((record, Some((attached, up_to))))
        })
        .await?;
    let pump = super::hijack::Pump {
        tty: record.config.tty,
        stdin: opts.stdin && record.config.open_stdin,
        detach_keys,
        on_exit: None,
    };
    let upgrade = hyper::upgrade::on(req);
    let engine = ctx.state.engine.clone();
    let tty = record.config.tty;
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let (attached, up_to) = match attached {
            Some((attached, up_to)) => (Some(attached), up_to),
            None => (None, None),
        };
        if opts.logs && !replay_log(&engine, &record, up_to, opts, &mut io).await {
            return;
        }
        let shim = match attached {
            None => Err("no stream asked for".to_string()),
            Some(Attached::Now(s, _)) => Ok(s),
            Some(Attached::AtStart(rx)) => tokio::task::spawn_blocking(move || rx.recv())
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .and_then(|r| r.map_err(|e| e.to_string())),
        };
        match shim {
            Ok(reader) => {
                let leftover = reader.buffer().to_vec();
                super::hijack::pump(io.into_inner(), reader.into_inner(), leftover, pump).await;
            }
            Err(e) => {
                tracing::debug!("attach to {}: {e}", record.id);
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut io).await;
            }
        }
    });
    Ok(super::hijack::switching_protocols(tty))
}

/// Write the container's log (up to `up_to`) into the attach stream, framed as the stream
/// is; false when the client went away.
async fn replay_log(
    engine: &Arc<berth_engine::Engine>,
    record: &ContainerRecord,
    up_to: Option<berth_shim_protocol::LogPosition>,
    opts: AttachOptions,
    io: &mut hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>,
) -> bool {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Entry>(64);
    let (engine, id) = (engine.clone(), record.id.clone());
    let log_opts = LogOptions {
        stdout: opts.stdout,
        stderr: opts.stderr,
        ..LogOptions::default()
    };
    let reader = tokio::task::spawn_blocking(move || {
        let mut emit = |e: Entry| tx.blocking_send(e).is_ok();
        let read = berth_engine::containers::logs::replay(
            engine.containers(),
            &id,
            up_to,
            &log_opts,
            &mut emit,
        );
        if let Err(e) = read {
            tracing::error!("replaying the log of {id}: {e}");
        }
    });
    let tty = record.config.tty;
    while let Some(e) = rx.recv().await {
        let bytes = if tty { Bytes::from(e.bytes) } else { frame(&e) };
        if tokio::io::AsyncWriteExt::write_all(io, &bytes)
            .await
            .is_err()
        {
            return false;
        }
    }
    let _ = reader.await;
    true
}

/// POST /containers/{id}/resize?h=&w=
pub(super) async fn resize(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let (h, w) = super::hijack::terminal_size(ctx)?;
    ctx.blocking(move |e| Ok(e.resize_container(&name, h, w)?))
        .await?;
    Ok(body::empty(StatusCode::OK))
}

/// POST /containers/{id}/restart?t=: stop (as `stop`), then start.
pub(super) async fn restart(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let t = stop_timeout(ctx)?;
    ctx.blocking(move |e| {
        e.stop_container(&name, t)?;
        e.start_container(&name)?;
        let id = e.containers().resolve(&name)?.id;
        e.containers().event(&id, "restart", &[]);
        Ok(())
    })
    .await?;
    Ok(body::empty(StatusCode::NO_CONTENT))
}

pub(super) async fn pause(ctx: &Ctx, name: String, pause: bool) -> ApiResult<Response<Body>> {
    ctx.blocking(move |e| {
        if pause {
            e.pause_container(&name)?;
        } else {
            e.unpause_container(&name)?;
        }
        Ok(())
    })
    .await?;
    Ok(body::empty(StatusCode::NO_CONTENT))
}

/// POST /containers/{id}/rename?name=
pub(super) async fn rename(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let new_name = ctx.query.get("name").unwrap_or_default().to_string();
    if new_name.is_empty() {
        return Err(ApiError::bad_request(
            "Neither old nor new names may be empty",
        ));
    }
    ctx.blocking(move |e| Ok(e.rename_container(&name, &new_name)?))
        .await?;
    Ok(body::empty(StatusCode::NO_CONTENT))
}

/// GET /containers/{id}/top?ps_args=
pub(super) async fn top(ctx: &Ctx, name: String) -> ApiResult<Response<Body>> {
    let args = ctx.query.get("ps_args").unwrap_or_default().to_string();
    let top = ctx
        .blocking(move |e| Ok(e.top_container(&name, &args)?))
        .await?;
    Ok(body::json(
        StatusCode::OK,
        &container::TopResponse {
            processes: top.processes,
            titles: top.titles,
        },
    ))
}

/// POST /containers/{id}/update: moby's UpdateConfig in, its UpdateResponse out.
pub(super) async fn update(
    ctx: &Ctx,
    name: String,
    body_in: Incoming,
) -> ApiResult<Response<Body>> {
    let value = body::read_json(body_in, MAX_BODY).await?;
    let update = container::decode::update_config(&value).map_err(berth_engine::Error::from)?;
    let warnings = ctx
        .blocking(move |e| Ok(e.update_container(&name, &update)?))
        .await?;
    Ok(body::json(
        StatusCode::OK,
        &container::UpdateResponse { warnings },
    ))
}

/// POST /containers/prune
pub(super) async fn prune(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let filters = berth_engine::filters::Filters::parse(
        ctx.query.get("filters"),
        &["until", "label", "label!"],
    )?;
    let (removed, reclaimed) = ctx
        .blocking(move |e| Ok(e.prune_containers(&filters)?))
        .await?;
    Ok(body::json(
        StatusCode::OK,
        &container::PruneReport {
            // null when none went, as dockerd's nil slice.
            containers_deleted: (!removed.is_empty()).then_some(removed),
            space_reclaimed: reclaimed,
        },
    ))
}
