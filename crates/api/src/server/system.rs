//! /_ping, /version, /info and /system/df.

use std::collections::BTreeMap;

use berth_api_types::system::{
    ComponentVersion, DiskUsage, FirewallInfo, IndexInfo, Info, Platform, PluginsInfo, Runtime,
    ServiceConfig, SwarmInfo, Version,
};
use hyper::{Method, Response, StatusCode};

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
    let details = [
        ("ApiVersion", version::MAX.to_string()),
        ("MinAPIVersion", version::MIN.to_string()),
        ("Os", "linux".into()),
        ("Arch", arch()),
        ("KernelVersion", kernel.clone()),
        ("GitCommit", String::new()),
        ("GoVersion", String::new()),
        ("BuildTime", String::new()),
        ("Experimental", "false".into()),
    ];
    let out = Version {
        platform: Platform {
            name: "berth".into(),
        },
        components: vec![ComponentVersion {
            name: "Engine".into(),
            version: v.clone(),
            details: details
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }],
        version: v.clone(),
        api_version: version::MAX.to_string(),
        min_api_version: version::MIN.to_string(),
        git_commit: String::new(),
        go_version: String::new(),
        os: "linux".into(),
        arch: arch(),
        kernel_version: kernel,
        experimental: false,
        // berth records no build time (dockerd omits an empty one).
        build_time: String::new(),
    };
    body::json(StatusCode::OK, &out)
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

/// Whether a boolean sysctl is 1 (false when it is absent: br_netfilter not loaded), as
/// dockerd's sysinfo reads it.
fn sysctl_on(name: &str) -> bool {
    std::fs::read_to_string(std::path::Path::new("/proc/sys").join(name))
        .is_ok_and(|v| v.trim() == "1")
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
    let runtimes: BTreeMap<String, Runtime> = info
        .runtimes
        .iter()
        .map(|(name, path)| (name.clone(), Runtime { path: path.clone() }))
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
    let mut out = Info {
        id: info.id.clone(),
        containers: containers.len(),
        containers_running: running,
        containers_paused: 0,
        containers_stopped: containers.len() - running,
        images,
        driver: info.storage_driver.clone(),
        driver_status: vec![["Backing Filesystem".into(), "extfs".into()]],
        plugins: PluginsInfo {
            volume: Some(vec![]),
            network: Some(vec![]),
            authorization: None,
            log: Some(vec!["json-file".into()]),
        },
        memory_limit: true,
        swap_limit: true,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        ipv4_forwarding: false,
        bridge_nf_iptables: Some(sysctl_on("net/bridge/bridge-nf-call-iptables")),
        bridge_nf_ip6tables: Some(sysctl_on("net/bridge/bridge-nf-call-ip6tables")),
        debug: false,
        nfd: 0,
        oom_kill_disable: true,
        ngoroutines: 0,
        system_time: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        logging_driver: "json-file".into(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: cgroup_version().into(),
        kernel_version: kernel,
        operating_system: os,
        os_version: String::new(),
        os_type: "linux".into(),
        architecture: uname().1,
        index_server_address: "https://index.docker.io/v1/".into(),
        registry_config: Some(registry_config(&info.insecure_registries)),
        ncpu,
        mem_total: mem_total(),
        generic_resources: None,
        docker_root_dir: info.data_root.clone(),
        http_proxy: String::new(),
        https_proxy: String::new(),
        no_proxy: String::new(),
        name: info.name.clone(),
        labels: vec![],
        experimental_build: false,
        server_version: info.server_version.clone(),
        runtimes,
        default_runtime: info.default_runtime.clone(),
        swarm: SwarmInfo {
            local_node_state: "inactive".into(),
            ..SwarmInfo::default()
        },
        live_restore_enabled: false,
        isolation: String::new(),
        init_binary: String::new(),
        security_options: info.security_options.clone(),
        // berth reads no CDI device specs.
        cdi_spec_dirs: vec![],
        // berth's NAT is a table of its own per bridge in nftables (network/src/nft.rs).
        firewall_backend: Some(FirewallInfo {
            driver: "nftables".into(),
            info: vec![],
        }),
        warnings: None,
    };
    super::compat::info(&mut out, ctx.version);
    Ok(body::json(StatusCode::OK, &out))
}

pub(super) async fn df(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let version = ctx.version;
    let usage = ctx
        .blocking(move |e| {
            let views = e.list_images(&berth_engine::filters::Filters::default())?;
            // Docker's objects only: pods' containers are the CRI's.
            let records: Vec<_> = e
                .containers()
                .list()
                .into_iter()
                .filter(|r| !r.in_pod())
                .collect();
            let mut summaries: Vec<_> = views.iter().map(|v| images::summary(v, version)).collect();
            images::count_usage(
                &mut summaries,
                &views,
                &records,
                &e.images.snapshot_sizes()?,
            );
            Ok(DiskUsage {
                layers_size: e.images.disk_usage()?,
                images: summaries,
                containers: records
                    .iter()
                    .map(|r| super::containers::sized_summary(e, r, version))
                    .collect(),
                volumes: super::volumes::usage(e),
                build_cache: super::build::df_entries(e),
            })
        })
        .await?;
    Ok(body::json(StatusCode::OK, &usage))
}

/// The registries berth reaches without verified TLS, as `docker info` lists them:
/// networks as CIDRs (loopback always), hosts as index configs.
fn registry_config(insecure: &[String]) -> ServiceConfig {
    let (cidrs, hosts): (Vec<&String>, Vec<&String>) = insecure.iter().partition(|e| {
        e.contains('/')
            && e.split('/')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok())
    });
    let mut cidr_list = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
    cidr_list.extend(cidrs.into_iter().cloned());
    let index_info = |name: &str, official: bool| IndexInfo {
        name: name.to_string(),
        mirrors: vec![],
        secure: official,
        official,
    };
    let mut index = BTreeMap::new();
    index.insert("docker.io".into(), index_info("docker.io", true));
    for h in hosts {
        index.insert(h.clone(), index_info(h, false));
    }
    ServiceConfig {
        insecure_registry_cidrs: cidr_list,
        index_configs: index,
        mirrors: vec![],
    }
}
