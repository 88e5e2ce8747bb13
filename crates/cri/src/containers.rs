//! A pod's containers: the CRI's config turned into an engine container that joins the
//! pod (see the engine's `containers::pod`), and the engine's state as the CRI reports it.
//! The CRI's own view of each (its metadata, labels, annotations, log path) is kept in a
//! record of its own, so that the engine's labels stay the image's and the user's.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_api_types::container::{
    Config, DeviceMapping, HostConfig, LogConfig, StrSlice, UpdateConfig,
};
use berth_api_types::exec::ExecConfig;
use berth_engine::containers::pod::PodLink;
use berth_engine::containers::{ContainerRecord, Status as EngineStatus};
use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{
    Container, ContainerConfig, ContainerFilter, ContainerState, ContainerStatus, ImageSpec,
    LinuxContainerResources, LinuxContainerSecurityContext, MountPropagation, NamespaceMode,
    SecurityProfile,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CriError, Result};
use crate::pods::{namespace_options, now_nanos, Pod, Record, Store};
use crate::Cri;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CriContainer {
    /// The engine container's id.
    pub id: String,
    pub sandbox: String,
    pub config: ContainerConfig,
    pub created_at: i64,
    /// The image's id.
    pub image_ref: String,
    pub log_path: Option<PathBuf>,
}

impl Record for CriContainer {
    fn id(&self) -> &str {
        &self.id
    }
    fn reserved_name(&self) -> Option<String> {
        let m = self.config.metadata.clone().unwrap_or_default();
        Some(format!("{}_{}_{}", self.sandbox, m.name, m.attempt))
    }
    const WHAT: &'static str = "container";
}

pub type CriContainers = Store<CriContainer>;

fn rfc3339_nanos(s: Option<&str>) -> i64 {
    s.and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

/// A group without a user is refused, as containerd refuses it.
fn check_user(sc: &LinuxContainerSecurityContext) -> Result<()> {
    if sc.run_as_group.is_some() && sc.run_as_user.is_none() && sc.run_as_username.is_empty() {
        return Err(CriError::InvalidArgument(
            "user group is specified without user".into(),
        ));
    }
    Ok(())
}

fn user_of(sc: &LinuxContainerSecurityContext) -> String {
    let user = match (&sc.run_as_user, sc.run_as_username.as_str()) {
        (Some(uid), _) => uid.value.to_string(),
        (None, name) => name.to_string(),
    };
    match (&sc.run_as_group, user.is_empty()) {
        (Some(gid), false) => format!("{user}:{}", gid.value),
        _ => user,
    }
}

/// SecurityOpt entries for seccomp: the runtime's default, none, or a profile on the node.
/// No profile at all is unconfined in the CRI (the kubelet asks for RuntimeDefault by name),
/// unlike Docker, as containerd reads it; so is a privileged container.
fn seccomp_opts(profile: Option<&SecurityProfile>, privileged: bool) -> Result<Vec<String>> {
    let Some(p) = profile.filter(|_| !privileged) else {
        return Ok(vec!["seccomp=unconfined".into()]);
    };
    match ProfileType::try_from(p.profile_type) {
        Ok(ProfileType::RuntimeDefault) => Ok(Vec::new()),
        Ok(ProfileType::Unconfined) => Ok(vec!["seccomp=unconfined".into()]),
        Ok(ProfileType::Localhost) => {
            let text = std::fs::read_to_string(&p.localhost_ref).map_err(|e| {
                CriError::InvalidArgument(format!("seccomp profile {}: {e}", p.localhost_ref))
            })?;
            Ok(vec![format!("seccomp={text}")])
        }
        Err(_) => Err(CriError::InvalidArgument(format!(
            "unknown seccomp profile type {}",
            p.profile_type
        ))),
    }
}

/// AppArmor: berth confines with seccomp and capabilities only; a node profile asked by
/// name is refused rather than dropped.
fn check_apparmor(profile: Option<&SecurityProfile>) -> Result<()> {
    match profile.map(|p| ProfileType::try_from(p.profile_type)) {
        Some(Ok(ProfileType::Localhost)) => Err(CriError::InvalidArgument(
            "AppArmor localhost profiles are not supported by berth".into(),
        )),
        _ => Ok(()),
    }
}

/// What Docker's HostConfig cannot say: hugepage limits and cgroup v2 `unified` entries,
/// as OCI resources (the OCI runtime applies or refuses them, e.g. `unified` on a host
/// without cgroup v2).
fn oci_resources(r: &LinuxContainerResources) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    if !r.hugepage_limits.is_empty() {
        let limits: Vec<Value> = r
            .hugepage_limits
            .iter()
            .map(|h| {
                let limit = [
                    ("pageSize", Value::from(h.page_size.as_str())),
                    ("limit", Value::from(h.limit)),
                ];
                Value::Object(limit.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            })
            .collect();
        out.insert("hugepageLimits".into(), Value::Array(limits));
    }
    if !r.unified.is_empty() {
        let unified = r
            .unified
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())));
        out.insert("unified".into(), Value::Object(unified.collect()));
    }
    out
}

/// The kubelet's resources as a HostConfig's (a zero: not given).
fn resources(r: &LinuxContainerResources, host: &mut HostConfig) {
    for (field, v) in [
        (&mut host.cpu_period, r.cpu_period),
        (&mut host.cpu_quota, r.cpu_quota),
        (&mut host.cpu_shares, r.cpu_shares),
        (&mut host.memory, r.memory_limit_in_bytes),
        (&mut host.memory_swap, r.memory_swap_limit_in_bytes),
        (&mut host.oom_score_adj, r.oom_score_adj),
    ] {
        if v != 0 {
            *field = v;
        }
    }
    if r.memory_limit_in_bytes != 0 && r.memory_swap_limit_in_bytes == 0 {
        // No swap unless asked for, as containerd sets it (swap limit = memory limit).
        host.memory_swap = r.memory_limit_in_bytes;
    }
    if !r.cpuset_cpus.is_empty() {
        host.cpuset_cpus.clone_from(&r.cpuset_cpus);
    }
    if !r.cpuset_mems.is_empty() {
        host.cpuset_mems.clone_from(&r.cpuset_mems);
    }
}

fn binds(config: &ContainerConfig) -> Vec<String> {
    config
        .mounts
        .iter()
        .map(|m| {
            let propagation = match MountPropagation::try_from(m.propagation) {
                Ok(MountPropagation::PropagationHostToContainer) => "rslave",
                Ok(MountPropagation::PropagationBidirectional) => "rshared",
                _ => "rprivate",
            };
            let mode = if m.readonly { "ro" } else { "rw" };
            format!("{}:{}:{mode},{propagation}", m.host_path, m.container_path)
        })
        .collect()
}

/// The engine's create request for a pod's container.
fn create_body(pod: &Pod, config: &ContainerConfig, image_id: &str) -> Result<Config> {
    let sc = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.clone())
        .unwrap_or_default();
    let pod_ns = namespace_options(&pod.config);
    let node_net = pod_ns.network == NamespaceMode::Node as i32;
    check_user(&sc)?;
    let mut security_opt = seccomp_opts(sc.seccomp.as_ref(), sc.privileged)?;
    check_apparmor(sc.apparmor.as_ref())?;
    if sc.no_new_privs {
        security_opt.push("no-new-privileges:true".into());
    }
    let caps = sc.capabilities.clone().unwrap_or_default();
    let devices = config
        .devices
        .iter()
        .map(|d| DeviceMapping {
            path_on_host: d.host_path.clone(),
            path_in_container: d.container_path.clone(),
            cgroup_permissions: if d.permissions.is_empty() {
                "rwm".into()
            } else {
                d.permissions.clone()
            },
        })
        .collect();
    let mut host = HostConfig {
        network_mode: if node_net { "host" } else { "none" }.into(),
        ipc_mode: if pod.ipc.is_some() { "" } else { "host" }.into(),
        privileged: sc.privileged,
        readonly_rootfs: sc.readonly_rootfs,
        cap_add: StrSlice(caps.add_capabilities),
        cap_drop: StrSlice(caps.drop_capabilities),
        group_add: sc
            .supplemental_groups
            .iter()
            .map(|g| g.to_string())
            .collect(),
        security_opt,
        binds: binds(config),
        devices,
        log_config: LogConfig {
            driver: "none".into(),
            ..LogConfig::default()
        },
        runtime: pod.runtime_handler.clone(),
        ..HostConfig::default()
    };
    if let Some(r) = config.linux.as_ref().and_then(|l| l.resources.as_ref()) {
        resources(r, &mut host);
    }
    if let Some(sysctls) = pod.config.linux.as_ref().map(|l| &l.sysctls) {
        host.sysctls = sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    }
    let m = config.metadata.clone().unwrap_or_default();
    let p = pod.config.metadata.clone().unwrap_or_default();
    // dockershim's labels: what `docker ps --filter label=io.kubernetes...` finds.
    let labels = [
        ("io.kubernetes.pod.name", p.name),
        ("io.kubernetes.pod.namespace", p.namespace),
        ("io.kubernetes.pod.uid", p.uid),
        ("io.kubernetes.container.name", m.name),
        ("io.kubernetes.sandbox.id", pod.id.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let given = |list: &[String]| (!list.is_empty()).then(|| StrSlice(list.to_vec()));
    Ok(Config {
        image: image_id.to_string(),
        labels,
        env: Some(
            config
                .envs
                .iter()
                .map(|e| format!("{}={}", e.key, e.value))
                .collect(),
        ),
        working_dir: config.working_dir.clone(),
        tty: config.tty,
        open_stdin: config.stdin,
        stdin_once: config.stdin_once,
        hostname: pod.config.hostname.clone(),
        user: user_of(&sc),
        entrypoint: given(&config.command),
        cmd: given(&config.args),
        host_config: host,
        ..Config::default()
    })
}

fn engine_name(pod: &Pod, config: &ContainerConfig) -> String {
    let m = config.metadata.clone().unwrap_or_default();
    let p = pod.config.metadata.clone().unwrap_or_default();
    format!(
        "k8s_{}_{}_{}_{}_{}",
        m.name, p.name, p.namespace, p.uid, m.attempt
    )
}

fn state_of(r: &ContainerRecord) -> ContainerState {
    match r.state.status {
        EngineStatus::Created => ContainerState::ContainerCreated,
        EngineStatus::Running => ContainerState::ContainerRunning,
        _ => ContainerState::ContainerExited,
    }
}

impl Cri {
    pub(crate) fn create_container(
        &self,
        sandbox: &str,
        config: Option<ContainerConfig>,
    ) -> Result<String> {
        let config =
            config.ok_or_else(|| CriError::InvalidArgument("no container config".into()))?;
        let name = config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| CriError::InvalidArgument("the container has no name".into()))?;
        let pod = self.pods.get(sandbox)?;
        let image = crate::images::find(self, config.image.as_ref())?.ok_or_else(|| {
            CriError::NotFound(format!(
                "image {:?} not found",
                config
                    .image
                    .as_ref()
                    .map(|i| i.image.clone())
                    .unwrap_or_default()
            ))
        })?;
        let image_id = image.record.id.to_string();
        let body = create_body(&pod, &config, &image_id)?;
        let log_path = match (pod.config.log_directory.as_str(), config.log_path.as_str()) {
            (dir, file) if !dir.is_empty() && !file.is_empty() => {
                Some(PathBuf::from(dir).join(file))
            }
            _ => None,
        };
        // The container's own pid mode when it gives namespace options (the kubelet copies
        // the pod's there, TARGET only ever there), else the pod's.
        let container_ns = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|sc| sc.namespace_options.clone());
        let (pid_mode, target) = match container_ns {
            Some(n) => (n.pid, n.target_id),
            None => (namespace_options(&pod.config).pid, String::new()),
        };
        // The kubelet's lists when it sends some (an empty list is protobuf's "unset": the
        // defaults stay, as containerd keeps them); a privileged container has none.
        let security = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.clone())
            .filter(|sc| !sc.privileged);
        let link = PodLink {
            sandbox: pod.id.clone(),
            net: pod.net.clone(),
            ipc: pod.ipc.clone(),
            uts: pod.uts.clone(),
            pid_host: pid_mode == NamespaceMode::Node as i32,
            pid: self.pid_namespace(&pod, pid_mode, &target)?,
            etc_dir: Some(pod.etc_dir.clone()),
            shm: pod.shm.clone(),
            hostname: pod.config.hostname.clone(),
            cgroup_parent: pod
                .config
                .linux
                .as_ref()
                .map(|l| l.cgroup_parent.clone())
                .unwrap_or_default(),
            resources: config
                .linux
                .as_ref()
                .and_then(|l| l.resources.as_ref())
                .map(oci_resources)
                .unwrap_or_default(),
            masked_paths: security
                .as_ref()
                .map(|sc| sc.masked_paths.clone())
                .filter(|p| !p.is_empty()),
            readonly_paths: security
                .as_ref()
                .map(|sc| sc.readonly_paths.clone())
                .filter(|p| !p.is_empty()),
            log_path: log_path.clone(),
        };
        let probe = CriContainer {
            id: String::new(),
            sandbox: pod.id.clone(),
            config: config.clone(),
            created_at: 0,
            image_ref: image_id.clone(),
            log_path: log_path.clone(),
        };
        if let Some(taken) = probe.reserved_name().and_then(|n| {
            self.containers
                .list()
                .into_iter()
                .find(|c| c.reserved_name().as_ref() == Some(&n))
        }) {
            return Err(CriError::FailedPrecondition(format!(
                "the name of container {name:?} in pod {} is reserved for {}",
                pod.id, taken.id
            )));
        }
        let record = self
            .engine
            .create_in_pod(&body, &engine_name(&pod, &config), link)?;
        let created = CriContainer {
            id: record.id.clone(),
            created_at: now_nanos(),
            ..probe
        };
        if let Err(e) = self.containers.insert(created) {
            let _ = self.engine.remove_container(&record.id, true);
            return Err(e);
        }
        Ok(record.id)
    }

    /// UpdateContainerResources: the Linux resources, as `docker update` changes them (the
    /// ones the kubelet leaves at zero keep their values).
    pub(crate) fn update_resources(
        &self,
        id: &str,
        linux: Option<LinuxContainerResources>,
    ) -> Result<()> {
        let c = self.containers.get(id)?;
        let Some(r) = linux else {
            return Ok(());
        };
        if !oci_resources(&r).is_empty() {
            return Err(CriError::InvalidArgument(
                "hugepage_limits and unified cannot be changed on a created container by berth"
                    .into(),
            ));
        }
        let mut update = UpdateConfig::default();
        resources(&r, &mut update);
        // Not a `docker update` field: set at create only; a change is refused by name.
        let current = self.engine.containers().resolve(&c.id)?.host.oom_score_adj;
        if r.oom_score_adj != 0 && r.oom_score_adj != current {
            return Err(CriError::InvalidArgument(format!(
                "oom_score_adj cannot be changed on a created container by berth (it is {current})"
            )));
        }
        update.oom_score_adj = 0;
        self.engine.update_container(&c.id, &update)?;
        Ok(())
    }

    /// The pid namespace a new container of `pod` joins: the pod's (its holder's), a target
    /// container's (it must run), or none to join (its own, or the node's).
    fn pid_namespace(&self, pod: &Pod, mode: i32, target: &str) -> Result<Option<PathBuf>> {
        match NamespaceMode::try_from(mode) {
            Ok(NamespaceMode::Pod) => Ok(pod.pid_holder.map(crate::pods::holder_namespace)),
            Ok(NamespaceMode::Target) => {
                let (c, r) = self.container(target).map_err(|_| {
                    CriError::NotFound(format!("the target container {target:?} was not found"))
                })?;
                if c.sandbox != pod.id {
                    return Err(CriError::InvalidArgument(format!(
                        "the target container {} is in another pod",
                        c.id
                    )));
                }
                if r.state.status != EngineStatus::Running || r.state.pid <= 0 {
                    return Err(CriError::FailedPrecondition(format!(
                        "the target container {} is not running",
                        c.id
                    )));
                }
                Ok(Some(PathBuf::from(format!("/proc/{}/ns/pid", r.state.pid))))
            }
            _ => Ok(None),
        }
    }

    /// A container that runs (exec and attach need one), by id or prefix.
    pub(crate) fn running(&self, id: &str) -> Result<()> {
        let (c, r) = self.container(id)?;
        if r.state.status != EngineStatus::Running {
            return Err(CriError::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        Ok(())
    }

    /// The full id of a ready pod.
    pub(crate) fn ready_pod(&self, id: &str) -> Result<String> {
        let pod = self.pods.get(id)?;
        if !pod.ready {
            return Err(CriError::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        Ok(pod.id)
    }

    /// The engine's id of a CRI container (by id or prefix).
    pub(crate) fn engine_id(&self, id: &str) -> Result<String> {
        Ok(self.containers.get(id)?.id)
    }

    /// A TCP connection to `port` on a ready pod's loopback, made inside its network.
    pub(crate) fn connect_in_pod(&self, pod: &str, port: u16) -> Result<std::net::TcpStream> {
        let pod = self.pods.get(pod)?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match &pod.net {
            Some(netns) => berth_network::netns::tcp_connect_in(netns, addr)
                .map_err(|e| CriError::Network(e.to_string())),
            // The node's network: its loopback is ours.
            None => std::net::TcpStream::connect(addr).map_err(|source| CriError::Io {
                what: format!("connect to {addr}"),
                source,
            }),
        }
    }

    /// The CRI record and the engine's of a container by id or prefix.
    fn container(&self, id: &str) -> Result<(CriContainer, ContainerRecord)> {
        let c = self.containers.get(id)?;
        let record = self.engine.containers().resolve(&c.id)?;
        Ok((c, record))
    }

    pub(crate) fn start_container(&self, id: &str) -> Result<()> {
        let started = std::time::Instant::now();
        let (c, _) = self.container(id)?;
        self.engine.start_container(&c.id)?;
        tracing::debug!(id = %c.id, ms = started.elapsed().as_secs_f64() * 1e3, "container started");
        Ok(())
    }

    pub(crate) fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let (c, _) = match self.container(id) {
            Ok(found) => found,
            Err(CriError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.engine.stop_container(&c.id, Some(timeout))?;
        Ok(())
    }

    pub(crate) fn remove_container(&self, id: &str) -> Result<()> {
        let c = match self.containers.get(id) {
            Ok(c) => c,
            Err(CriError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.engine.remove_container(&c.id, true) {
            Ok(()) | Err(berth_engine::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.cpu_rates.forget(&c.id);
        self.containers.remove(&c.id)
    }

    fn to_container(&self, c: &CriContainer, r: &ContainerRecord) -> Container {
        Container {
            id: c.id.clone(),
            pod_sandbox_id: c.sandbox.clone(),
            metadata: c.config.metadata.clone(),
            image: c.config.image.clone(),
            image_ref: c.image_ref.clone(),
            state: state_of(r) as i32,
            created_at: c.created_at,
            labels: c.config.labels.clone(),
            annotations: c.config.annotations.clone(),
            image_id: c.image_ref.clone(),
        }
    }

    pub(crate) fn list_containers(&self, filter: Option<ContainerFilter>) -> Vec<Container> {
        let engine: HashMap<String, ContainerRecord> = self
            .engine
            .containers()
            .list()
            .into_iter()
            .filter(|r| r.in_pod())
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut list: Vec<CriContainer> = self.containers.list();
        list.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        list.iter()
            .filter_map(|c| engine.get(&c.id).map(|r| self.to_container(c, r)))
            .filter(|c| filter.as_ref().is_none_or(|f| matches(c, f)))
            .collect()
    }

    pub(crate) fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        let (c, r) = self.container(id)?;
        let state = state_of(&r);
        let exited = state == ContainerState::ContainerExited;
        let reason = match (exited, r.state.oom_killed, r.state.exit_code) {
            (false, _, _) => "",
            (true, true, _) => "OOMKilled",
            (true, false, 0) => "Completed",
            (true, false, _) => "Error",
        };
        Ok(ContainerStatus {
            id: c.id.clone(),
            metadata: c.config.metadata.clone(),
            state: state as i32,
            created_at: c.created_at,
            started_at: rfc3339_nanos(r.state.started_at.as_deref()),
            finished_at: if exited {
                rfc3339_nanos(r.state.finished_at.as_deref())
            } else {
                0
            },
            exit_code: r.state.exit_code,
            image: Some(ImageSpec {
                image: c.config.image.clone().unwrap_or_default().image,
                ..Default::default()
            }),
            image_ref: c.image_ref.clone(),
            reason: reason.into(),
            message: r.state.error.clone(),
            labels: c.config.labels.clone(),
            annotations: c.config.annotations.clone(),
            mounts: c.config.mounts.clone(),
            log_path: c
                .log_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            resources: None,
            image_id: c.image_ref.clone(),
            user: None,
        })
    }

    /// ExecSync: the command's output and exit code; past `timeout` seconds (0: none) it
    /// is killed and the call fails with DeadlineExceeded.
    pub(crate) fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> Result<(Vec<u8>, Vec<u8>, i32)> {
        let (c, _) = self.container(id)?;
        let exec = ExecConfig {
            cmd: cmd.clone(),
            attach_stdout: true,
            attach_stderr: true,
            ..ExecConfig::default()
        };
        let exec_id = self.engine.create_exec(&c.id, exec)?;
        let (_, stream) = self.engine.start_exec(&exec_id, false)?;
        let mut stream = stream
            .ok_or_else(|| CriError::FailedPrecondition("the exec gave no output stream".into()))?;
        if timeout > 0 {
            let _ = stream
                .get_ref()
                .set_read_timeout(Some(std::time::Duration::from_secs(timeout as u64)));
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            match berth_engine::containers::stream::read_frame(&mut stream) {
                Ok(Some((berth_shim_protocol::STDOUT, data))) => out.extend(data),
                Ok(Some((berth_shim_protocol::STDERR, data))) => err.extend(data),
                Ok(Some((berth_shim_protocol::EXIT, data))) => {
                    let code = data
                        .get(..4)
                        .and_then(|b| b.try_into().ok())
                        .map_or(255, i32::from_be_bytes);
                    return Ok((out, err, code));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ok((out, err, 137)),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    self.kill_exec(&exec_id);
                    return Err(CriError::DeadlineExceeded(format!(
                        "command {cmd:?} timed out after {timeout}s"
                    )));
                }
                Err(e) => {
                    return Err(CriError::Io {
                        what: "read the exec's output".into(),
                        source: e,
                    })
                }
            }
        }
    }

    fn kill_exec(&self, exec_id: &str) {
        if let Ok(e) = self.engine.execs.get(exec_id) {
            if e.pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(e.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn matches(c: &Container, f: &ContainerFilter) -> bool {
    if !f.id.is_empty() && !c.id.starts_with(&f.id) {
        return false;
    }
    if !f.pod_sandbox_id.is_empty() && !c.pod_sandbox_id.starts_with(&f.pod_sandbox_id) {
        return false;
    }
    if let Some(state) = &f.state {
        if state.state != c.state {
            return false;
        }
    }
    f.label_selector
        .iter()
        .all(|(k, v)| c.labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1::{Int64Value, Mount};
    use serde_json::json;

    #[test]
    fn users_from_the_security_context() {
        let sc = LinuxContainerSecurityContext {
            run_as_user: Some(Int64Value { value: 1000 }),
            run_as_group: Some(Int64Value { value: 2000 }),
            ..Default::default()
        };
        assert_eq!(user_of(&sc), "1000:2000");
        let sc = LinuxContainerSecurityContext {
            run_as_username: "www-data".into(),
            ..Default::default()
        };
        assert_eq!(user_of(&sc), "www-data");
        assert_eq!(user_of(&LinuxContainerSecurityContext::default()), "");
    }

    #[test]
    fn mounts_become_binds_with_propagation() {
        let config = ContainerConfig {
            mounts: vec![Mount {
                container_path: "/data".into(),
                host_path: "/srv/data".into(),
                readonly: true,
                propagation: MountPropagation::PropagationHostToContainer as i32,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(binds(&config), ["/srv/data:/data:ro,rslave"]);
    }

    #[test]
    fn resources_become_host_config_fields_and_oci_entries() {
        let r = LinuxContainerResources {
            unified: [("memory.high".to_string(), "1M".to_string())].into(),
            hugepage_limits: vec![k8s_cri::v1::HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 20,
            }],
            ..Default::default()
        };
        let oci = oci_resources(&r);
        assert_eq!(oci["unified"], json!({"memory.high": "1M"}));
        assert_eq!(
            oci["hugepageLimits"],
            json!([{"pageSize": "2MB", "limit": 4 << 20}])
        );
        let r = LinuxContainerResources {
            cpu_shares: 512,
            memory_limit_in_bytes: 64 << 20,
            ..Default::default()
        };
        let mut host = HostConfig::default();
        resources(&r, &mut host);
        assert_eq!(
            (
                host.cpu_shares,
                host.memory,
                host.memory_swap,
                host.cpu_quota
            ),
            (512, 64 << 20, 64 << 20, 0)
        );
    }
}
