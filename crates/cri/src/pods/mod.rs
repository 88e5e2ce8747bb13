//! Pod sandboxes without a pause container: the pod's network, IPC and UTS namespaces are
//! held by bind-mounted files (CRI-O's pinns does the same), the network set up through
//! CNI; only a shared pid namespace needs a process (berth-pause), as a pid namespace dies
//! with its pid 1.

mod files;
mod holder;
pub(crate) mod store;

pub(crate) use holder::namespace_of as holder_namespace;
pub use store::{Pod, Pods, Record, Store};

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use berth_network::cni::{Attachment, CniError, PortMapping};
use berth_network::pin;
use k8s_cri::v1::{
    LinuxPodSandboxStatus, Namespace, NamespaceMode, NamespaceOption, PodIp, PodSandbox,
    PodSandboxConfig, PodSandboxFilter, PodSandboxNetworkStatus, PodSandboxState, PodSandboxStatus,
    PodSandboxStatusResponse, Protocol,
};

use crate::error::{CriError, Result};
use crate::Cri;

/// How many restored pods are checked at once at start.
const RESTORE_CHECKS_AT_ONCE: usize = 4;

/// The pod's namespace modes (the proto's defaults, POD, when the kubelet sends none).
pub(crate) fn namespace_options(config: &PodSandboxConfig) -> NamespaceOption {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default()
}

fn is_node(mode: i32) -> bool {
    mode == NamespaceMode::Node as i32
}

pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

pub(crate) fn random_id() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| CriError::Io {
            what: "read /dev/urandom".into(),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn check_metadata(config: &PodSandboxConfig) -> Result<()> {
    let m = config
        .metadata
        .as_ref()
        .ok_or_else(|| CriError::InvalidArgument("the sandbox config has no metadata".into()))?;
    for (what, value) in [
        ("name", &m.name),
        ("uid", &m.uid),
        ("namespace", &m.namespace),
    ] {
        if value.is_empty() {
            return Err(CriError::InvalidArgument(format!(
                "the sandbox metadata has no {what}"
            )));
        }
    }
    Ok(())
}

fn port_mappings(config: &PodSandboxConfig) -> Vec<PortMapping> {
    config
        .port_mappings
        .iter()
        .filter(|p| p.host_port > 0)
        .map(|p| PortMapping {
            host_port: p.host_port as u16,
            container_port: p.container_port as u16,
            protocol: match Protocol::try_from(p.protocol) {
                Ok(Protocol::Udp) => "udp",
                Ok(Protocol::Sctp) => "sctp",
                _ => "tcp",
            }
            .into(),
            host_ip: p.host_ip.clone(),
        })
        .collect()
}

fn attachment(pod: &Pod, netns: PathBuf) -> Attachment {
    let m = pod.config.metadata.clone().unwrap_or_default();
    Attachment {
        container_id: pod.id.clone(),
        netns,
        ifname: "eth0".into(),
        args: vec![
            ("K8S_POD_NAMESPACE".into(), m.namespace),
            ("K8S_POD_NAME".into(), m.name),
            ("K8S_POD_INFRA_CONTAINER_ID".into(), pod.id.clone()),
            ("K8S_POD_UID".into(), m.uid),
        ],
        port_mappings: port_mappings(&pod.config),
    }
}

impl Cri {
    fn pod_dir(&self, id: &str) -> PathBuf {
        self.config.state_dir.join("pods").join(id)
    }

    /// RunPodSandbox.
    pub(crate) fn run_pod(&self, config: PodSandboxConfig, handler: String) -> Result<String> {
        let started = Instant::now();
        check_metadata(&config)?;
        self.check_handler(&handler)?;
        let id = random_id()?;
        let dir = self.pod_dir(&id);
        let pod = Pod {
            id: id.clone(),
            created_at: now_nanos(),
            ready: false,
            runtime_handler: handler,
            net: None,
            ipc: None,
            uts: None,
            pid_holder: None,
            cni_result: None,
            ips: Vec::new(),
            etc_dir: dir.join("etc"),
            shm: None,
            config,
        };
        self.pods.insert(pod.clone())?;
        match self.set_up_pod(pod) {
            Ok(()) => {
                tracing::debug!(pod = %id, ms = started.elapsed().as_secs_f64() * 1e3, "pod run");
                Ok(id)
            }
            Err(e) => {
                if let Ok(pod) = self.pods.get(&id) {
                    self.tear_down(&pod);
                    self.release(&pod);
                }
                let _ = self.pods.remove(&id);
                Err(e)
            }
        }
    }

    /// The namespaces, the network and the files of a new pod; recorded as they are made
    /// so that a failure undoes exactly what was done. CNI ADD (the plugins' processes, most
    /// of the time) needs only the network namespace: it runs while the rest is made.
    fn set_up_pod(&self, pod: Pod) -> Result<()> {
        let started = Instant::now();
        let ns = namespace_options(&pod.config);
        let node_net = is_node(ns.network);
        // The node's name on the node's network, or when the kubelet gives none (as
        // containerd does).
        let hostname = match (node_net, pod.config.hostname.as_str()) {
            (false, given) if !given.is_empty() => given.to_string(),
            _ => nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if !node_net {
            let net = self.pin(&pod.id, pin::Kind::Net, "net", None)?;
            self.pods.update(&pod.id, |p| p.net = Some(net))?;
        }
        let pod = self.pods.get(&pod.id)?;
        let (network, local) = std::thread::scope(|s| {
            let network = pod
                .net
                .clone()
                .map(|netns| s.spawn(|| self.set_up_network(&pod, netns)));
            let local = self.set_up_local(&pod, &ns, node_net, &hostname);
            let network = network.map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CriError::Network("CNI ADD panicked".into())))
            });
            (network, local)
        });
        network.transpose()?;
        local?;
        self.pods.update(&pod.id, |p| {
            p.ready = true;
            p.config.hostname = hostname;
        })?;
        tracing::debug!(pod = %pod.id, ms = started.elapsed().as_secs_f64() * 1e3, "pod set up");
        Ok(())
    }

    /// A namespace of the pod, pinned to a file in its directory.
    fn pin(&self, id: &str, kind: pin::Kind, name: &str, host: Option<&str>) -> Result<PathBuf> {
        let path = self.pod_dir(id).join(name);
        pin::new_at(kind, &path, host)
            .map_err(|e| CriError::Network(format!("the pod's {name} namespace: {e}")))?;
        Ok(path)
    }

    /// CNI ADD in the pod's network namespace; its result and addresses recorded.
    fn set_up_network(&self, pod: &Pod, netns: PathBuf) -> Result<()> {
        let started = Instant::now();
        let result = self.cni_add(pod, netns)?;
        let ips = berth_network::cni::ips_of(&result)
            .iter()
            .map(|ip| ip.to_string())
            .collect();
        self.pods.update(&pod.id, |p| {
            p.cni_result = Some(result);
            p.ips = ips;
        })?;
        tracing::debug!(pod = %pod.id, ms = started.elapsed().as_secs_f64() * 1e3, "pod network (CNI ADD)");
        Ok(())
    }

    /// What the pod needs beside its network: UTS and IPC namespaces, /dev/shm, the pid
    /// namespace's holder, the /etc files.
    fn set_up_local(
        &self,
        pod: &Pod,
        ns: &NamespaceOption,
        node_net: bool,
        hostname: &str,
    ) -> Result<()> {
        let started = Instant::now();
        if !node_net {
            let uts = self.pin(&pod.id, pin::Kind::Uts, "uts", Some(hostname))?;
            self.pods.update(&pod.id, |p| p.uts = Some(uts))?;
        }
        if !is_node(ns.ipc) {
            let ipc = self.pin(&pod.id, pin::Kind::Ipc, "ipc", None)?;
            self.pods.update(&pod.id, |p| p.ipc = Some(ipc))?;
            let shm = self.pod_dir(&pod.id).join("shm");
            berth_engine::containers::pod::mount_pod_shm(&shm)?;
            self.pods.update(&pod.id, |p| p.shm = Some(shm))?;
        }
        if ns.pid == NamespaceMode::Pod as i32 {
            let pid = holder::start(self)?;
            self.pods.update(&pod.id, |p| p.pid_holder = Some(pid))?;
        }
        let dns = pod.config.dns_config.as_ref();
        files::write(&pod.etc_dir, hostname, dns, node_net)?;
        tracing::debug!(pod = %pod.id, ms = started.elapsed().as_secs_f64() * 1e3, "pod namespaces and files");
        Ok(())
    }

    fn cni_add(&self, pod: &Pod, netns: PathBuf) -> Result<serde_json::Value> {
        let net = self
            .cni
            .network()
            .map_err(|e| CriError::Network(format!("the pod's network: {e}")))?;
        let a = attachment(pod, netns);
        self.cni.add(&net, &a).map_err(|e| {
            // Plugins that ran before the failing one leave state: DEL is idempotent.
            let _ = self.cni.del(&net, &a, None);
            match e {
                CniError::Timeout { .. } => {
                    CriError::DeadlineExceeded(format!("the pod's network: {e}"))
                }
                _ => CriError::Network(format!("the pod's network: {e}")),
            }
        })
    }

    /// Stop what runs for the pod: its network (CNI DEL), its network namespace, its pid
    /// holder. Each part may be gone already.
    fn tear_down(&self, pod: &Pod) {
        if let Some(netns) = &pod.net {
            if let Ok(net) = self.cni.network() {
                let started = Instant::now();
                if let Err(e) = self.cni.del(
                    &net,
                    &attachment(pod, netns.clone()),
                    pod.cni_result.as_ref(),
                ) {
                    tracing::warn!(pod = %pod.id, error = %e, "CNI DEL");
                }
                tracing::debug!(pod = %pod.id, ms = started.elapsed().as_secs_f64() * 1e3, "pod network torn down (CNI DEL)");
            }
            if let Err(e) = pin::release(netns) {
                tracing::warn!(pod = %pod.id, error = %e, "release the network namespace");
            }
        }
        if let Some(pid) = pod.pid_holder {
            holder::stop(pid);
        }
    }

    /// Let go of the rest: the IPC and UTS namespaces, /dev/shm and the pod's directory.
    fn release(&self, pod: &Pod) {
        if let Some(shm) = &pod.shm {
            if let Err(e) = berth_engine::containers::pod::unmount_pod_shm(shm) {
                tracing::warn!(pod = %pod.id, error = %e, "unmount the pod's /dev/shm");
            }
        }
        for path in [&pod.ipc, &pod.uts].into_iter().flatten() {
            if let Err(e) = pin::release(path) {
                tracing::warn!(pod = %pod.id, error = %e, "release a namespace");
            }
        }
        let _ = std::fs::remove_dir_all(self.pod_dir(&pod.id));
    }

    /// At start: pod directories no record names (a crash between pinning a pod's
    /// namespaces and saving its record) are let go, namespace files first.
    pub(crate) fn sweep_orphan_pods(&self) {
        let Ok(entries) = std::fs::read_dir(self.config.state_dir.join("pods")) else {
            return;
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if self.pods.get(&id).is_ok_and(|p| p.id == id) {
                continue;
            }
            for name in ["net", "ipc", "uts"] {
                if let Err(e) = pin::release(&entry.path().join(name)) {
                    tracing::warn!(pod = %id, error = %e, "release an orphaned namespace");
                }
            }
            let _ = berth_engine::containers::pod::unmount_pod_shm(&entry.path().join("shm"));
            let _ = std::fs::remove_dir_all(entry.path());
            tracing::info!(pod = %id, "removed what a pod without a record left");
        }
    }

    /// At start: the ready pods of the previous run that have a network of their own, for
    /// [`Self::check_restored_networks`].
    pub(crate) fn restored_networks(&self) -> Vec<Pod> {
        self.pods
            .list()
            .into_iter()
            .filter(|p| p.ready && p.net.is_some())
            .collect()
    }

    /// With the pods of the previous run kept: each ready pod's network is checked as its
    /// plugins see it (CNI CHECK). A pod whose check fails (its veth deleted behind
    /// berthd's back, the IPAM state lost, a plugin that does not answer in time) is
    /// NotReady from then on, so the kubelet stops it and makes a new one, rather than
    /// running containers cut off the network. Runs beside the served APIs: a hung plugin
    /// holds up no request (each CHECK ends at `cni-plugin-timeout`).
    pub(crate) fn check_restored_networks(&self, pods: Vec<Pod>) {
        if pods.is_empty() {
            return;
        }
        let net = match self.cni.network() {
            Ok(net) => net,
            Err(e) => {
                tracing::warn!(error = %e, "no CNI network to check the restored pods against");
                return;
            }
        };
        // Each CHECK runs every plugin of the list: a few pods at a time.
        for group in pods.chunks(RESTORE_CHECKS_AT_ONCE) {
            std::thread::scope(|s| {
                for pod in group {
                    let net = &net;
                    s.spawn(move || self.check_restored(net, pod));
                }
            });
        }
    }

    fn check_restored(&self, net: &berth_network::cni::NetworkList, pod: &Pod) {
        let (Some(netns), Some(result)) = (&pod.net, &pod.cni_result) else {
            return;
        };
        let failure = if netns.exists() {
            let a = attachment(pod, netns.clone());
            self.cni.check(net, &a, result).err().map(|e| e.to_string())
        } else {
            Some(format!("its network namespace {} is gone", netns.display()))
        };
        let Some(why) = failure else {
            return;
        };
        tracing::warn!(pod = %pod.id, error = %why, "the restored pod's network failed its check: NotReady");
        match self.pods.update(&pod.id, |p| p.ready = false) {
            // Removed meanwhile: nothing to record.
            Ok(_) | Err(CriError::NotFound(_)) => {}
            Err(e) => tracing::warn!(pod = %pod.id, error = %e, "record the pod NotReady"),
        }
    }

    /// The engine's containers of a pod.
    pub(crate) fn pod_containers(
        &self,
        id: &str,
    ) -> Vec<berth_engine::containers::ContainerRecord> {
        self.engine
            .containers()
            .list()
            .into_iter()
            .filter(|c| c.pod.as_ref().is_some_and(|p| p.sandbox == id))
            .collect()
    }

    /// StopPodSandbox: its containers stopped, its network torn down. Stopping twice is fine.
    pub(crate) fn stop_pod(&self, id: &str) -> Result<()> {
        let pod = match self.pods.get(id) {
            Ok(p) => p,
            Err(CriError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        for c in self.pod_containers(&pod.id) {
            if let Err(e) = self.engine.stop_container(&c.id, Some(0)) {
                tracing::warn!(container = %c.id, error = %e, "stop a pod's container");
            }
        }
        self.tear_down(&pod);
        self.pods.update(&pod.id, |p| {
            p.ready = false;
            p.net = None;
            p.pid_holder = None;
        })?;
        Ok(())
    }

    /// RemovePodSandbox: stopped first if it runs, its containers removed.
    pub(crate) fn remove_pod(&self, id: &str) -> Result<()> {
        let pod = match self.pods.get(id) {
            Ok(p) => p,
            Err(CriError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.stop_pod(&pod.id)?;
        for c in self.pod_containers(&pod.id) {
            self.engine.remove_container(&c.id, true)?;
            self.cpu_rates.forget(&c.id);
        }
        self.cpu_rates.forget(&crate::stats::pod_key(&pod.id));
        self.release(&pod);
        self.pods.remove(&pod.id)
    }

    pub(crate) fn pod_status(&self, id: &str, verbose: bool) -> Result<PodSandboxStatusResponse> {
        let pod = self.pods.get(id)?;
        let ns = namespace_options(&pod.config);
        let mut ips = pod.ips.iter();
        let status = PodSandboxStatus {
            id: pod.id.clone(),
            metadata: pod.config.metadata.clone(),
            state: state_of(&pod) as i32,
            created_at: pod.created_at,
            network: Some(PodSandboxNetworkStatus {
                ip: ips.next().cloned().unwrap_or_default(),
                additional_ips: ips.map(|ip| PodIp { ip: ip.clone() }).collect(),
            }),
            linux: Some(LinuxPodSandboxStatus {
                namespaces: Some(Namespace {
                    options: Some(NamespaceOption {
                        network: ns.network,
                        pid: ns.pid,
                        ipc: ns.ipc,
                        target_id: String::new(),
                        userns_options: None,
                    }),
                }),
            }),
            labels: pod.config.labels.clone(),
            annotations: pod.config.annotations.clone(),
            runtime_handler: pod.runtime_handler.clone(),
        };
        let mut info = HashMap::new();
        if verbose {
            let detail = serde_json::json!({
                "pid": pod.pid_holder.unwrap_or(0),
                "netNamespace": pod.net,
                "ipcNamespace": pod.ipc,
                "utsNamespace": pod.uts,
                "cniResult": pod.cni_result,
                "config": pod.config,
                "runtimeHandler": pod.runtime_handler,
            });
            info.insert("info".to_string(), detail.to_string());
        }
        Ok(PodSandboxStatusResponse {
            status: Some(status),
            info,
            containers_statuses: Vec::new(),
            timestamp: now_nanos(),
        })
    }

    pub(crate) fn list_pods(&self, filter: Option<PodSandboxFilter>) -> Vec<PodSandbox> {
        let mut pods = self.pods.list();
        pods.sort_by_key(|p| std::cmp::Reverse(p.created_at));
        pods.into_iter()
            .filter(|p| filter.as_ref().is_none_or(|f| matches(p, f)))
            .map(|p| PodSandbox {
                state: state_of(&p) as i32,
                id: p.id,
                metadata: p.config.metadata,
                created_at: p.created_at,
                labels: p.config.labels,
                annotations: p.config.annotations,
                runtime_handler: p.runtime_handler,
            })
            .collect()
    }

    /// A runtime handler must name an OCI runtime berthd knows (empty: the default).
    pub(crate) fn check_handler(&self, handler: &str) -> Result<()> {
        if handler.is_empty() {
            return Ok(());
        }
        let known = self
            .engine
            .paths
            .as_ref()
            .is_some_and(|p| p.runtimes.contains_key(handler));
        if known {
            Ok(())
        } else {
            Err(CriError::InvalidArgument(format!(
                "no runtime for {handler:?} is configured"
            )))
        }
    }
}

fn state_of(pod: &Pod) -> PodSandboxState {
    if pod.ready {
        PodSandboxState::SandboxReady
    } else {
        PodSandboxState::SandboxNotready
    }
}

fn matches(pod: &Pod, f: &PodSandboxFilter) -> bool {
    if !f.id.is_empty() && !pod.id.starts_with(&f.id) {
        return false;
    }
    if let Some(state) = &f.state {
        if state.state != state_of(pod) as i32 {
            return false;
        }
    }
    f.label_selector
        .iter()
        .all(|(k, v)| pod.config.labels.get(k) == Some(v))
}
