//! Containers: records kept as `containers/<id>/config.v2.json` (written then renamed), their
//! root filesystems, and their lifecycle through one berth-shim each.
//!
//! Per container directory (data root): `config.v2.json` (this record), `rootfs/` (the
//! overlay while it runs), `upper/` and `work/` (its writable layer), `<id>-json.log` (its
//! output). A removed container's directory is first renamed into `removing/` beside the
//! containers' root, then deleted in the background (and at the next start, if berthd
//! stopped before).
//!
//! Per container bundle (exec root, a tmpfs by default, as containerd keeps its bundles):
//! `config.json` for the runtime, the shim's socket, the runtime's log and pid file, and
//! `exit.json`, which the shim writes when the container ends. It lives from start until
//! the shim is gone and its exit is recorded: nothing on the way of a start or an exit
//! waits for the disk.

mod create;
pub mod exec;
pub mod files;
pub mod health;
pub mod host;
mod lifecycle;
pub mod logs;
mod manage;
pub mod net;
pub mod networks;
mod orphans;
pub mod pod;
pub mod request;
pub mod restart;
mod rootfs;
pub mod seccomp;
mod shims;
mod spec;
pub mod stats;
pub mod stream;
mod update;
mod user;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use lifecycle::{Paths, WaitCondition};

/// The json-file driver's rotation (`--log-opt max-size=10m --log-opt max-file=3`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct LogLimits {
    /// Bytes; 0: no rotation.
    #[serde(default)]
    pub max_size: u64,
    /// Files kept, the live one included (at least 1).
    #[serde(default)]
    pub max_files: u32,
}

impl LogLimits {
    /// From the driver's options (daemon.json `log-opts`, or a container's LogConfig.Config);
    /// options the driver does not know are refused by name.
    pub fn parse(
        opts: &serde_json::Map<String, serde_json::Value>,
        base: LogLimits,
    ) -> Result<LogLimits> {
        let mut limits = base;
        for (key, value) in opts {
            let text = value
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| value.to_string());
            match key.as_str() {
                "max-size" => {
                    limits.max_size = parse_size(&text).ok_or_else(|| {
                        Error::InvalidArgument(format!("invalid log-opt max-size {text:?}"))
                    })?
                }
                "max-file" => {
                    limits.max_files = text.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "invalid log-opt max-file {text:?}: it must be a number of at least 1"
                        ))
                    })?
                }
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "unknown log opt '{other}' for json-file log driver"
                    )))
                }
            }
        }
        // max-file without max-size is accepted, as dockerd accepts it: nothing rotates.
        Ok(limits)
    }

    /// The driver's options as inspect shows them.
    pub fn options(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if self.max_size > 0 {
            out.insert("max-size".to_string(), self.max_size.to_string());
        }
        if self.max_files > 1 {
            out.insert("max-file".to_string(), self.max_files.to_string());
        }
        out
    }
}

/// Docker's sizes: `1024`, `10k`, `10m`, `1g` (binary units, optional `b`).
pub fn parse_size(s: &str) -> Option<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches('b');
    let (num, mult) = match digits.chars().last()? {
        'k' => (&digits[..digits.len() - 1], 1u64 << 10),
        'm' => (&digits[..digits.len() - 1], 1 << 20),
        'g' => (&digits[..digits.len() - 1], 1 << 30),
        't' => (&digits[..digits.len() - 1], 1 << 40),
        _ => (digits, 1),
    };
    let value: f64 = num.trim().parse().ok()?;
    (value >= 0.0 && value.is_finite()).then_some((value * mult as f64) as u64)
}

/// The parts of Docker's container Config berth honours.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub stop_timeout: Option<i64>,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    /// The image's health check with the request's over it (moby's merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<health::HealthConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub status: Status,
    /// Frozen (`docker pause`); the status stays running.
    #[serde(default)]
    pub paused: bool,
    pub pid: i32,
    pub exit_code: i32,
    /// The kernel's OOM killer struck in the container's cgroup during its last run.
    #[serde(default)]
    pub oom_killed: bool,
    pub error: String,
    /// Exited, and to start again by its restart policy after the back-off (moby's
    /// Restarting: Docker counts it as running, so that rm and stop treat it as such).
    #[serde(default)]
    pub restarting: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Set once a container with a health check has started (moby's State.Health).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<health::Health>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading '/'.
    pub name: String,
    pub created: String,
    /// The image id.
    pub image: String,
    pub config: Config,
    /// `none` or `host`.
    pub network_mode: String,
    /// The HostConfig as the client sent it, typed (what inspect shows back). Records of
    /// berthd before typed models hold the client's JSON, nulls included: decoded by Go's
    /// rules, as the body was.
    #[serde(
        default,
        deserialize_with = "berth_api_types::container::decode::with_nulls"
    )]
    pub host_config: request::HostConfig,
    /// The OCI runtime by name (empty in records older than --runtime: the default).
    #[serde(default)]
    pub runtime: String,
    /// The OCI seccomp filter (None: unconfined).
    #[serde(default)]
    pub seccomp: Option<serde_json::Value>,
    #[serde(default)]
    pub no_new_privileges: bool,
    /// Resources, capabilities, mounts... from HostConfig.
    #[serde(default)]
    pub host: host::HostOptions,
    #[serde(default)]
    pub restart: restart::RestartPolicy,
    #[serde(default)]
    pub restart_count: u32,
    /// Stopped or killed by the user (restart policies leave it alone).
    #[serde(default)]
    pub manually_stopped: bool,
    /// The terminal's initial size (height, width), with a TTY.
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    #[serde(default)]
    pub log: LogLimits,
    pub state: State,
    /// Published ports, DNS and hosts options, and the networks it is on.
    #[serde(default)]
    pub net: net::NetOptions,
    /// Its place on each of its networks while it runs (the first: the one made first,
    /// which holds the published ports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<net::Endpoint>,
    /// The one endpoint of records written before containers had several (read, moved
    /// into `endpoints` when the record is loaded, never written).
    #[serde(default, rename = "endpoint", skip_serializing)]
    pub legacy_endpoint: Option<net::Endpoint>,
    /// The Kubernetes pod it belongs to (made through the CRI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<pod::PodLink>,
}

impl ContainerRecord {
    /// Docker's status word: created, running, paused, restarting, exited.
    pub fn status_word(&self) -> &'static str {
        if self.state.paused && self.state.status == Status::Running {
            "paused"
        } else if self.state.restarting {
            "restarting"
        } else {
            self.state.status.as_str()
        }
    }

    pub fn hostname(&self) -> String {
        self.config
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| self.id[..12].to_string())
    }

    pub fn network_mode(&self) -> &str {
        &self.network_mode
    }

    /// On a bridge network (the default one or a user-defined one): an endpoint of its own.
    pub fn on_network(&self) -> bool {
        let mode = self.network_mode.as_str();
        !matches!(mode, "none" | "host") && !mode.starts_with("container:")
    }

    /// Its endpoint that holds the published ports and the namespace (the first made).
    pub fn endpoint(&self) -> Option<&net::Endpoint> {
        self.endpoints.first()
    }

    /// Its endpoint on network `key` (`bridge` or a user-defined network's id).
    pub fn endpoint_on(&self, key: &str) -> Option<&net::Endpoint> {
        self.endpoints.iter().find(|e| e.network == key)
    }

    /// The networks it is on, its first one (the network mode's) first.
    pub fn joins(&self) -> Vec<net::Join> {
        let mut out = Vec::new();
        if self.on_network() {
            out.push(net::Join {
                name: self.network_mode.clone(),
                network: self.network_key().to_string(),
                aliases: self.net.aliases.clone(),
                ip: self.net.ip,
                ip6: self.net.ip6,
                gw_priority: self.net.gw_priority,
                mac: self.net.mac.clone(),
                sysctls: self.net.sysctls.clone(),
            });
        }
        out.extend(self.net.more.iter().cloned());
        out
    }

    /// The id of its network in endpoints (`bridge`: the default network).
    pub fn network_key(&self) -> &str {
        if self.net.network_id.is_empty() {
            "bridge"
        } else {
            &self.net.network_id
        }
    }

    /// `--rm`: removed once it has ended.
    pub fn auto_remove(&self) -> bool {
        self.host_config.auto_remove
    }
}

/// Every container, in memory and on disk, and a signal for state changes.
pub struct Containers {
    root: PathBuf,
    /// Where bundles live (under the exec root).
    bundles: PathBuf,
    map: Mutex<HashMap<String, ContainerRecord>>,
    changed: Condvar,
    /// Called after each exit is recorded (restart policies).
    exit_hook: std::sync::OnceLock<ExitHook>,
    /// Attaches waiting for their container to start.
    pub(crate) waiting: stream::Waiting,
    /// The last exit codes of containers removed lately (`wait --condition removed` of an
    /// --rm container reports it).
    removed_exits: Mutex<HashMap<String, i32>>,
    /// How many removals of each container failed (a removal wait ends with the error of
    /// one that fails while it waits).
    removal_failures: Mutex<HashMap<String, u64>>,
    /// The event log (the engine's; containers publish most of it).
    pub events: crate::events::Events,
    /// Containers whose shim still runs (it may outlive the exit it reported).
    pub(crate) shims: shims::Shims,
    /// Restarts by policy whose start is under way.
    pub(crate) restarts: restart::Starting,
    /// The health checks of running containers.
    health: health::Monitor,
    /// The volumes (`<data root>/volumes`, beside the containers' root).
    pub volumes: std::sync::Arc<crate::volumes::Volumes>,
    /// The default bridge network (unset: berthd was started without one).
    pub(crate) net: std::sync::OnceLock<std::sync::Arc<networks::Networks>>,
}

type ExitHook = Box<dyn Fn(&str) + Send + Sync>;

/// Beside the containers' root: directories of removed containers, being deleted.
fn removing_dir(root: &Path) -> PathBuf {
    root.with_file_name("removing")
}

/// Delete the directory of a removed container; its root filesystem may still be mounted
/// (a container removed as it ends is unmounted here, off the path of its waiters).
fn delete_discarded(dir: &Path) -> Result<()> {
    rootfs::unmount(&dir.join("rootfs"))?;
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io(format!("remove {}: {e}", dir.display()))),
    }
}

/// Berth before 2026-12 kept bundles in `<data-root>/containers/<id>/bundle`: a container
/// an older berthd left running is found through a link from the exec root (its shim
/// still listens and writes its exit there); stale ones of stopped containers are deleted.
fn adopt_legacy_bundles(root: &Path, bundles: &Path, records: &HashMap<String, ContainerRecord>) {
    for (id, record) in records {
        let legacy = root.join(id).join(LEGACY_BUNDLE);
        if !legacy.is_dir() {
            continue;
        }
        let link = bundles.join(id);
        if record.state.status != Status::Running {
            let _ = std::fs::remove_dir_all(&legacy);
        } else if std::fs::symlink_metadata(&link).is_err() {
            if let Err(e) = std::os::unix::fs::symlink(&legacy, &link) {
                tracing::warn!("cannot link the old bundle of {id}: {e}");
            }
        }
    }
}

/// The legacy bundle's name inside a container's directory (see `adopt_legacy_bundles`).
const LEGACY_BUNDLE: &str = "bundle";

/// Bundles of containers that do not run (removed, or ended while berthd was away) take
/// memory in the exec root's tmpfs; those of running ones are their shims' (live restore).
fn sweep_bundles(bundles: &Path, records: &HashMap<String, ContainerRecord>) {
    let Ok(entries) = std::fs::read_dir(bundles) else {
        return;
    };
    for entry in entries.flatten() {
        let running = entry
            .file_name()
            .to_str()
            .and_then(|id| records.get(id))
            .is_some_and(|r| r.state.status == Status::Running);
        if !running {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A JSON list of strings (None when it is not a list; non-strings are skipped).
pub fn string_list(v: &serde_json::Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    })
}

/// Write a file only root may read (records and configs hold the containers' environment).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| Error::Io(format!("write {}: {e}", path.display())))
}

pub(crate) fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| Error::Io(format!("read /dev/urandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// Names Docker gives when none is asked for: adjective_noun.
fn generated_name(id: &str) -> String {
    const LEFT: [&str; 8] = [
        "brave", "calm", "eager", "gentle", "jolly", "keen", "quiet", "swift",
    ];
    const RIGHT: [&str; 8] = [
        "albatross",
        "beacon",
        "cedar",
        "dolphin",
        "harbor",
        "lantern",
        "mooring",
        "pier",
    ];
    let n = u64::from_str_radix(&id[..8], 16).unwrap_or(0) as usize;
    format!("{}_{}", LEFT[n % 8], RIGHT[(n / 8) % 8])
}

impl Containers {
    /// Load every record under `root`; bundles live under `bundles`. Records of containers
    /// that were running when berthd stopped are reconciled by the caller (live restore).
    pub fn open(root: &Path, bundles: &Path) -> Result<Containers> {
        // Private as dockerd keeps them: records and logs hold the containers' environment.
        for (dir, mode) in [(root, 0o710), (bundles, 0o700)] {
            std::fs::create_dir_all(dir)
                .and_then(|()| {
                    std::fs::set_permissions(
                        dir,
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    )
                })
                .map_err(|e| Error::Io(format!("create {}: {e}", dir.display())))?;
        }
        // What a removal left half done.
        if let Ok(entries) = std::fs::read_dir(removing_dir(root)) {
            for entry in entries.flatten() {
                delete_discarded(&entry.path())?;
            }
        }
        let mut map = HashMap::new();
        for entry in std::fs::read_dir(root)
            .map_err(|e| Error::Io(format!("read {}: {e}", root.display())))?
            .flatten()
        {
            let path = entry.path().join("config.v2.json");
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            match serde_json::from_slice::<ContainerRecord>(&bytes) {
                Ok(mut r) => {
                    if let Some(ep) = r.legacy_endpoint.take() {
                        r.endpoints.insert(0, ep);
                    }
                    map.insert(r.id.clone(), r);
                }
                Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
            }
        }
        adopt_legacy_bundles(root, bundles, &map);
        sweep_bundles(bundles, &map);
        let volumes = crate::volumes::Volumes::open(&root.with_file_name("volumes"))?;
        Ok(Containers {
            volumes: std::sync::Arc::new(volumes),
            root: root.to_path_buf(),
            bundles: bundles.to_path_buf(),
            map: Mutex::new(map),
            changed: Condvar::new(),
            exit_hook: std::sync::OnceLock::new(),
            waiting: stream::Waiting::default(),
            removed_exits: Mutex::new(HashMap::new()),
            removal_failures: Mutex::new(HashMap::new()),
            events: crate::events::Events::default(),
            shims: shims::Shims::default(),
            restarts: restart::Starting::default(),
            health: health::Monitor::default(),
            net: std::sync::OnceLock::new(),
        })
    }

    /// Take container `id` off its network, if it is on one.
    pub(crate) fn disconnect(&self, id: &str) {
        if let Some(net) = self.net.get() {
            net.disconnect(self, id);
        }
    }

    pub fn set_exit_hook(&self, hook: ExitHook) {
        let _ = self.exit_hook.set(hook);
    }

    /// Whether restart policies apply yet (berthd applies them once it has restored its
    /// containers).
    fn restarts_enabled(&self) -> bool {
        self.exit_hook.get().is_some()
    }

    fn exited(&self, id: &str) {
        if let Some(hook) = self.exit_hook.get() {
            hook(id);
        }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The container's root filesystem (its overlay, mounted while it runs).
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.dir(id).join("rootfs")
    }

    /// The container's bundle (where its shim listens).
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.bundles.join(id)
    }

    /// Remove the container's bundle; one adopted from an older berthd goes with the link
    /// to it (`adopt_legacy_bundles`).
    fn remove_bundle(&self, id: &str) {
        let bundle = self.bundle(id);
        if std::fs::symlink_metadata(&bundle).is_ok_and(|m| m.file_type().is_symlink()) {
            let _ = std::fs::remove_dir_all(self.dir(id).join(LEGACY_BUNDLE));
            let _ = std::fs::remove_file(&bundle);
        } else {
            let _ = std::fs::remove_dir_all(&bundle);
        }
    }

    /// Take the directory of container `id` out of the store (one rename, so a crash
    /// cannot leave half a record), then unmount and delete it in the background.
    fn discard_dir(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        let removing = removing_dir(&self.root);
        std::fs::create_dir_all(&removing)
            .map_err(|e| Error::Io(format!("create {}: {e}", removing.display())))?;
        let target = removing.join(id);
        match std::fs::rename(&dir, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::Io(format!("remove {}: {e}", dir.display()))),
        }
        std::thread::spawn(move || {
            if let Err(e) = delete_discarded(&target) {
                tracing::warn!("{e}");
            }
        });
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ContainerRecord>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, record: &ContainerRecord) -> Result<()> {
        let dir = self.dir(&record.id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Io(format!("create {}: {e}", dir.display())))?;
        let tmp = dir.join("config.v2.json.tmp");
        let bytes = serde_json::to_vec(record).map_err(|e| Error::Io(e.to_string()))?;
        let saved = write_private(&tmp, &bytes).and_then(|()| {
            std::fs::rename(&tmp, dir.join("config.v2.json"))
                .map_err(|e| Error::Io(format!("save {}: {e}", dir.display())))
        });
        if saved.is_err() {
            // A full disk leaves a short temporary file: it goes, the old record stays.
            let _ = std::fs::remove_file(&tmp);
        }
        saved
    }

    /// Insert a new container; the name must be free.
    pub fn insert(
        &self,
        mut record: ContainerRecord,
        name: Option<&str>,
    ) -> Result<ContainerRecord> {
        record.id = random_id()?;
        let mut map = self.lock();
        record.name = match name
            .map(|n| n.trim_start_matches('/'))
            .filter(|n| !n.is_empty())
        {
            Some(n) if !valid_name(n) => {
                return Err(Error::InvalidArgument(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )))
            }
            Some(n) => {
                if let Some(other) = map.values().find(|c| c.name == n) {
                    return Err(Error::Conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        other.id
                    )));
                }
                n.to_string()
            }
            None => {
                let base = generated_name(&record.id);
                if map.values().any(|c| c.name == base) {
                    format!("{base}_{}", &record.id[..6])
                } else {
                    base
                }
            }
        };
        self.save(&record)?;
        map.insert(record.id.clone(), record.clone());
        Ok(record)
    }

    /// Publish `action` about container `id`, with its name, image and labels (and `extra`).
    pub fn event(&self, id: &str, action: &str, extra: &[(&str, String)]) {
        let mut e = crate::events::Event::new("container", action, id);
        if let Some(r) = self.lock().get(id) {
            e = e
                .with("name", r.name.clone())
                .with("image", r.config.image.clone());
            for (k, v) in r.config.labels.iter().flatten() {
                e = e.with(k, v.clone());
            }
        }
        for (k, v) in extra {
            e = e.with(k, v.clone());
        }
        self.events.publish(e);
    }

    /// Give container `id` a new name (free, and valid).
    pub fn rename(&self, id: &str, new_name: &str) -> Result<()> {
        let name = new_name.trim_start_matches('/');
        if !valid_name(name) {
            return Err(Error::InvalidArgument(format!(
                "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        {
            let map = self.lock();
            if let Some(other) = map.values().find(|c| c.name == name && c.id != id) {
                return Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                )));
            }
        }
        self.update(id, |r| r.name = name.to_string()).map(drop)
    }

    /// A container by full id, unique id prefix or name. A pod's container (made through
    /// the CRI) answers to its full id only, so that no Docker name or short id reaches one
    /// by accident.
    pub fn resolve(&self, name: &str) -> Result<ContainerRecord> {
        let map = self.lock();
        let key = name.trim_start_matches('/');
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let docker = || map.values().filter(|c| !c.in_pod());
        if let Some(c) = docker().find(|c| c.name == key) {
            return Ok(c.clone());
        }
        let matches: Vec<&ContainerRecord> = docker()
            .filter(|c| !key.is_empty() && c.id.starts_with(key))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NotFound(format!("No such container: {name}"))),
            _ => Err(Error::InvalidArgument(format!(
                "multiple containers match {name:?}"
            ))),
        }
    }

    pub fn list(&self) -> Vec<ContainerRecord> {
        let mut v: Vec<ContainerRecord> = self.lock().values().cloned().collect();
        v.sort_by(|a, b| b.created.cmp(&a.created));
        v
    }

    /// Change a record and wake whoever waits on state changes.
    pub fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        self.change(id, f, true)
    }

    /// Change a record in memory only: it is about to be removed, so writing it would be
    /// wasted (and a crash before the removal finds it running, which the restore handles).
    fn update_unsaved(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        self.change(id, f, false)
    }

    fn change(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord),
        save: bool,
    ) -> Result<ContainerRecord> {
        let mut map = self.lock();
        let record = map
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("No such container: {id}")))?;
        f(record);
        let copy = record.clone();
        // The change holds in memory even when it cannot be saved (a full disk), so whoever
        // waits on it is told either way, as dockerd releases its waiters whether or not its
        // checkpoint is written.
        self.changed.notify_all();
        if save {
            self.save(&copy)?;
        }
        Ok(copy)
    }

    fn forget(&self, id: &str) {
        let mut map = self.lock();
        if let Some(r) = map.remove(id) {
            let mut exits = self.removed_exits.lock().unwrap_or_else(|e| e.into_inner());
            if exits.len() >= 1024 {
                exits.clear();
            }
            exits.insert(r.id, r.state.exit_code);
        }
        self.removal_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.changed.notify_all();
    }

    /// The exit code of a container removed lately.
    pub fn removed_exit(&self, id: &str) -> Option<i32> {
        self.removed_exits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }

    /// A removal of `id` failed with `error`: the record keeps the error (as moby's
    /// SetRemovalError), and the waits for its removal end with it.
    pub(crate) fn removal_failed(&self, id: &str, error: &str) {
        // Counted under the records' lock, with the error, so that a woken waiter sees both.
        let failed = |r: &mut ContainerRecord| {
            r.state.error = error.to_string();
            *self
                .removal_failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id.to_string())
                .or_default() += 1;
        };
        // Saved if the disk takes it; either way the waiters are woken.
        if let Err(e) = self.update(id, failed) {
            tracing::warn!("container {id}: {e}");
        }
    }

    /// How many removals of `id` failed so far.
    pub(crate) fn failed_removals(&self, id: &str) -> u64 {
        self.removal_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
            .unwrap_or(0)
    }

    /// Wake every [`Containers::wait_until`], to look at its condition again.
    pub fn wake_waiters(&self) {
        let _map = self.lock();
        self.changed.notify_all();
    }

    /// Wait (up to `timeout`) until `done` holds for the record of `id` or it is gone.
    pub fn wait_until(
        &self,
        id: &str,
        timeout: std::time::Duration,
        done: impl Fn(Option<&ContainerRecord>) -> bool,
    ) -> Option<ContainerRecord> {
        let deadline = std::time::Instant::now() + timeout;
        let mut map = self.lock();
        loop {
            let current = map.get(id);
            if done(current) {
                return current.cloned();
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return current.cloned();
            }
            map = self
                .changed
                .wait_timeout(map, deadline - now)
                .map(|(m, _)| m)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A removal berthd did not finish (it stopped between the rename and the delete) is
    /// finished at the next open; the half-removed container is not loaded.
    #[test]
    fn open_finishes_interrupted_removals() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("containers");
        let left = dir.path().join("removing").join("abc");
        std::fs::create_dir_all(left.join("upper/etc")).expect("mkdir");
        std::fs::write(left.join("config.v2.json"), b"{}").expect("write");
        let containers = Containers::open(&root, &dir.path().join("bundles")).expect("open");
        assert!(containers.list().is_empty());
        assert!(!left.exists(), "the interrupted removal was not finished");
    }

    /// A record written when a container had one endpoint (`endpoint`) loads with it as
    /// its first one, and is written back in the new form only.
    #[test]
    fn records_with_one_endpoint_still_load() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("containers");
        let id = "a".repeat(64);
        std::fs::create_dir_all(root.join(&id)).expect("mkdir");
        let old = serde_json::json!({
            "id": id, "name": "old", "created": "", "image": "sha256:x", "config": {},
            "network_mode": "bridge",
            "state": {"status": "running", "pid": 1, "exit_code": 0, "error": "",
                      "started_at": null, "finished_at": null},
            "endpoint": {"ip": "10.9.0.2", "prefix": 24, "gateway": "10.9.0.1",
                         "mac": "02:42:0a:09:00:02", "host_ifname": "vbx", "netns": "/n",
                         "files": "/f", "ports": [], "endpoint_id": "e"},
        });
        std::fs::write(
            root.join(&id).join("config.v2.json"),
            serde_json::to_vec(&old).expect("json"),
        )
        .expect("write");
        let containers = Containers::open(&root, &dir.path().join("bundles")).expect("open");
        let r = containers.resolve("old").expect("loaded");
        assert_eq!(r.endpoints.len(), 1);
        let ep = r.endpoint().expect("endpoint");
        assert_eq!(
            (ep.network.as_str(), ep.ifname.as_str()),
            ("bridge", "eth0")
        );
        assert_eq!(ep.ip, std::net::Ipv4Addr::new(10, 9, 0, 2));
        let written = serde_json::to_value(&r).expect("json");
        assert!(written.get("endpoint").is_none() && written["endpoints"].is_array());
    }

    /// A record written before HostConfig was typed holds the client's JSON as sent (nulls,
    /// keys moby does not have): it loads, typed as the body was decoded, and `--rm` and
    /// the restart policy read from it still hold.
    #[test]
    fn records_with_the_clients_host_config_still_load() {
        let old = serde_json::json!({
            "id": "b".repeat(64), "name": "old", "created": "", "image": "sha256:x",
            "config": {}, "network_mode": "none",
            "host_config": {"NetworkMode": "none", "AutoRemove": true, "Binds": null,
                "Memory": 67108864, "PidsLimit": null, "MemorySwappiness": -1,
                "KernelMemory": 0, "SomethingNew": {"x": 1}, "ConsoleSize": [24, 80],
                "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
                "BlkioWeightDevice": [], "Init": null,
                "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": null}]},
            "state": {"status": "exited", "pid": 0, "exit_code": 0, "error": "",
                      "started_at": null, "finished_at": null},
        });
        let r: ContainerRecord = serde_json::from_value(old).expect("old record");
        assert!(r.auto_remove());
        let h = &r.host_config;
        assert_eq!(
            (h.memory, h.pids_limit, h.memory_swappiness),
            (67108864, None, Some(-1))
        );
        assert_eq!(h.console_size, [24, 80]);
        assert_eq!(h.mounts[0].target, "/t");
        assert!(h.blkio_weight_device.as_ref().is_some_and(Vec::is_empty));
        let again: ContainerRecord =
            serde_json::from_value(serde_json::to_value(&r).expect("json")).expect("new record");
        assert_eq!(again, r);
        let none: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": "c", "name": "older", "created": "", "image": "sha256:x", "config": {},
            "network_mode": "none", "host_config": null,
            "state": {"status": "exited", "pid": 0, "exit_code": 0, "error": "",
                      "started_at": null, "finished_at": null},
        }))
        .expect("record without a HostConfig");
        assert!(!none.auto_remove());
    }
}
