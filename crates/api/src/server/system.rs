//! /_ping, /version, /info and /system/df.

use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::body::{self, Body};
use super::error::ApiResult;
use super::{images, Ctx};
use crate::version;

pub(super) fn ping(method: &Method) -> Response<Body> {
    let mut r = if *method == Method::HEAD {
        body::empty(StatusCode::OK)
    } else {
        body::full(StatusCode::OK, "text/plain; charset=utf-8", "OK")
    };
    let h = r.headers_mut();
    for (k, v) in [
        ("Docker-Experimental", "false"),
        ("Ostype", "linux"),
        ("Builder-Version", "1"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
    ] {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    }
    r
}

fn uname() -> (String, String) {
    nix::sys::utsname::uname()
        .map(|u| {
            (
                u.release().to_string_lossy().into_owned(),
                u.machine().to_string_lossy().into_owned(),
            )
        })
        .unwrap_or_default()
}

fn arch() -> String {
    berth_image::Platform::host().architecture
}

pub(super) fn version(ctx: &Ctx) -> Response<Body> {
    let (kernel, _) = uname();
    let v = &ctx.state.info.server_version;
    body::json(
        StatusCode::OK,
        &json!({
            "Platform": {"Name": "berth"},
            "Components": [{"Name": "Engine", "Version": v, "Details": {
                "ApiVersion": version::MAX.to_string(), "MinAPIVersion": version::MIN.to_string(),
                "Os": "linux", "Arch": arch(), "KernelVersion": kernel, "GitCommit": "", "GoVersion": "", "BuildTime": "", "Experimental": "false"
            }}],
            "Version": v,
            "ApiVersion": version::MAX.to_string(),
            "MinAPIVersion": version::MIN.to_string(),
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": arch(),
            "KernelVersion": kernel,
            "BuildTime": "",
        }),
    )
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

pub(super) async fn info(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let (images, containers) = ctx
        .blocking(|e| Ok((e.images.list()?.len(), e.containers().list())))
        .await?;
    let count = |s: berth_engine::containers::Status| {
        containers.iter().filter(|c| c.state.status == s).count()
    };
    let running = count(berth_engine::containers::Status::Running);
    let info = &ctx.state.info;
    let (kernel, _) = uname();
    let runtimes: serde_json::Map<String, Value> = info
        .runtimes
        .iter()
        .map(|(name, path)| (name.clone(), json!({"path": path})))
        .collect();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into());
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(body::json(
        StatusCode::OK,
        &json!({
            "ID": info.id,
            "Containers": containers.len(), "ContainersRunning": running, "ContainersPaused": 0,
            "ContainersStopped": containers.len() - running,
            "Images": images,
            "Driver": info.storage_driver,
            "DriverStatus": [["Backing Filesystem", "extfs"]],
            "Plugins": {"Volume": [], "Network": [], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true,
            "CPUShares": true, "CPUSet": true, "PidsLimit": true, "IPv4Forwarding": false,
            "Debug": false, "NFd": 0, "OomKillDisable": true, "NGoroutines": 0,
            "SystemTime": humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "KernelVersion": kernel,
            "OperatingSystem": os,
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": uname().1,
            "NCPU": ncpu,
            "MemTotal": mem_total(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": registry_config(&info.insecure_registries),
            "DockerRootDir": info.data_root,
            "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": info.name,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": info.server_version,
            "Runtimes": runtimes,
            "DefaultRuntime": info.default_runtime,
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": false,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": info.security_options,
            "Warnings": null,
        }),
    ))
}

pub(super) async fn df(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let version = ctx.version;
    let (images, layers_size, volumes, cache) = ctx
        .blocking(move |e| {
            let views = e.list_images(&berth_engine::filters::Filters::default())?;
            let summaries: Vec<Value> = views.iter().map(|v| images::summary(v, version)).collect();
            Ok((
                summaries,
                e.images.disk_usage()?,
                super::volumes::usage(e),
                super::build::df_entries(e),
            ))
        })
        .await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"LayersSize": layers_size, "Images": images, "Containers": [], "Volumes": volumes, "BuildCache": cache}),
    ))
}

/// The registries berth reaches without verified TLS, as `docker info` lists them:
/// networks as CIDRs (loopback always), hosts as index configs.
fn registry_config(insecure: &[String]) -> Value {
    let (cidrs, hosts): (Vec<&String>, Vec<&String>) = insecure.iter().partition(|e| {
        e.contains('/')
            && e.split('/')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok())
    });
    let mut cidr_list = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
    cidr_list.extend(cidrs.into_iter().cloned());
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}),
    );
    for h in hosts {
        index.insert(
            h.clone(),
            json!({"Name": h, "Mirrors": [], "Secure": false, "Official": false}),
        );
    }
    json!({"InsecureRegistryCIDRs": cidr_list, "IndexConfigs": index, "Mirrors": []})
}
