//! Container state on disk: `<root>/<id>/state.json`, plus the exec barrier socket while the
//! container is created but not started.
//!
//! The status is derived, never stored: a state directory without state.json is
//! `creating` (or a crashed create); otherwise `stopped` if init is gone (or a zombie, or its
//! pid was reused: the start time recorded at create must match), `created` while the exec
//! barrier exists, and `running` after.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const STATE_FILE: &str = "state.json";
/// Written before the cgroup is created, so a create that died half-way (no state.json)
/// can still be cleaned up by `delete`.
const CGROUP_FILE: &str = "cgroup";

/// The lifecycle status of runtime-spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `create` records about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Init's pid in the runtime's pid namespace.
    pub pid: i32,
    /// Init's start time (clock ticks since boot), to tell it from a reused pid.
    pub init_start_time: u64,
    /// RFC 3339.
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup path, the same in every hierarchy.
    pub cgroup_path: String,
    /// The config at create time: later commands run its hooks.
    pub config: Spec,
}

/// The runtime-spec state, as hooks read it on stdin.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: PathBuf,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// What `state` and `list --format json` print: the runtime-spec state plus runc's extras.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// The runtime's state root (--root).
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

/// runc's rule for ids; it also keeps ids from naming paths.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

impl StateRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateRoot { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Compiled seccomp programs ('@' keeps the name out of the container ids).
    pub fn seccomp_cache(&self) -> PathBuf {
        self.path.join("@cache").join("seccomp")
    }

    fn dir_of(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        Ok(self.path.join(id))
    }

    /// Claim `id`: its directory is created atomically, so two creates cannot both win.
    pub fn claim(&self, id: &str) -> Result<PathBuf> {
        let dir = self.dir_of(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(|e| Error::io("create state root", &self.path, e))?;
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(id.into()))
            }
            Err(e) => Err(Error::io("create state directory", dir, e)),
        }
    }

    pub fn load(&self, id: &str) -> Result<Container> {
        let dir = self.dir_of(id)?;
        if !dir.is_dir() {
            return Err(Error::NotFound(id.into()));
        }
        Container::read(id.to_string(), dir)
    }

    /// Every container, sorted by id.
    pub fn list(&self) -> Result<Vec<Container>> {
        let entries = match fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read state root", &self.path, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if validate_id(&id).is_ok() && entry.path().is_dir() {
                out.push(Container::read(id, entry.path())?);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// A container as found in the state root.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    /// None while `create` has not finished (or crashed).
    pub stored: Option<Stored>,
    /// The cgroup, worked out once (it reads the host's cgroup layout).
    cgroup: std::cell::OnceCell<Option<berth_cgroups::Cgroup>>,
}

impl Container {
    pub fn new(id: String, dir: PathBuf, stored: Option<Stored>) -> Self {
        Container {
            id,
            dir,
            stored,
            cgroup: std::cell::OnceCell::new(),
        }
    }

    /// A container whose cgroup the caller already holds (`create` for `run`'s delete), so
    /// its layout is not read from /proc again.
    pub fn with_cgroup(self, cgroup: berth_cgroups::Cgroup) -> Self {
        let _ = self.cgroup.set(Some(cgroup));
        self
    }

    fn read(id: String, dir: PathBuf) -> Result<Self> {
        let file = dir.join(STATE_FILE);
        let stored = match fs::read(&file) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Init(format!("corrupt state {}: {e}", file.display())))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("read", file, e)),
        };
        Ok(Container::new(id, dir, stored))
    }

    /// Write state.json atomically (temp file, rename). No fsync: the state root lives in
    /// /run (tmpfs) and dies with the machine; what matters is that a reader never sees a
    /// half-written file, which the rename guarantees.
    pub fn save(dir: &Path, stored: &Stored) -> Result<()> {
        let tmp = dir.join(".state.json.tmp");
        let bytes =
            serde_json::to_vec(stored).map_err(|e| Error::Init(format!("encode state: {e}")))?;
        let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(&bytes)
            .map_err(|e| Error::io("write", &tmp, e))?;
        fs::rename(&tmp, dir.join(STATE_FILE)).map_err(|e| Error::io("rename", &tmp, e))
    }

    /// The container's cgroup, if create got that far.
    pub fn cgroup(&self) -> Result<Option<&berth_cgroups::Cgroup>> {
        if let Some(c) = self.cgroup.get() {
            return Ok(c.as_ref());
        }
        let path = match &self.stored {
            Some(s) => Some(s.cgroup_path.clone()),
            None => fs::read_to_string(self.dir.join(CGROUP_FILE))
                .ok()
                .filter(|p| p.starts_with('/')),
        };
        let cgroup = match path {
            Some(p) => Some(berth_cgroups::Cgroup::at(
                berth_cgroups::Layout::detect()?,
                p,
            )),
            None => None,
        };
        Ok(self.cgroup.get_or_init(|| cgroup).as_ref())
    }

    /// Record the cgroup path of a container being created (see `CGROUP_FILE`).
    pub fn record_cgroup(dir: &Path, path: &str) -> Result<()> {
        let file = dir.join(CGROUP_FILE);
        fs::write(&file, path).map_err(|e| Error::io("write", file, e))
    }

    /// Serialize lifecycle operations on this container.
    pub fn lock(&self) -> Result<Flock<File>> {
        let f = File::open(&self.dir).map_err(|e| Error::io("open", &self.dir, e))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::sys(format!("lock {}", self.dir.display()), e))
    }

    pub fn status(&self) -> Status {
        let Some(stored) = &self.stored else {
            return Status::Creating;
        };
        if !process_alive(stored.pid, stored.init_start_time) {
            Status::Stopped
        } else if crate::barrier::path(&self.dir).exists() {
            Status::Created
        } else if self
            .cgroup()
            .ok()
            .flatten()
            .is_some_and(|c| c.is_frozen().unwrap_or(false))
        {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The state hooks receive.
    pub fn spec_state(&self, status: Status) -> SpecState {
        let stored = self.stored.as_ref();
        SpecState {
            oci_version: crate::spec::OCI_VERSION.into(),
            id: self.id.clone(),
            status,
            pid: stored.map(|s| s.pid).filter(|_| status != Status::Stopped),
            bundle: stored.map(|s| s.bundle.clone()).unwrap_or_default(),
            annotations: stored.map(|s| s.annotations.clone()).unwrap_or_default(),
        }
    }

    /// What `state` prints. A stopped container reports pid 0, as runc does.
    pub fn report(&self) -> Report {
        let status = self.status();
        let stored = self.stored.as_ref();
        Report {
            oci_version: crate::spec::OCI_VERSION.into(),
            id: self.id.clone(),
            pid: stored
                .map(|s| s.pid)
                .filter(|_| status != Status::Stopped)
                .unwrap_or(0),
            status,
            bundle: stored.map(|s| s.bundle.clone()).unwrap_or_default(),
            rootfs: stored.map(|s| s.rootfs.clone()).unwrap_or_default(),
            created: stored.map(|s| s.created.clone()).unwrap_or_default(),
            owner: owner_of(&self.dir),
            annotations: stored.map(|s| s.annotations.clone()).unwrap_or_default(),
        }
    }
}

fn owner_of(dir: &Path) -> String {
    let Ok(meta) = fs::metadata(dir) else {
        return String::new();
    };
    crate::passwd::by_uid(Path::new("/etc/passwd"), meta.uid())
        .map(|e| e.name)
        .unwrap_or_else(|| meta.uid().to_string())
}

/// State letter and start time of a process, from /proc/<pid>/stat.
pub fn process_stat(pid: i32) -> Option<(char, u64)> {
    // Room for the whole file: procfs reports no size, and std's reads of a file without
    // one start at 32 bytes (six reads for this one).
    let mut stat = String::with_capacity(1024);
    File::open(format!("/proc/{pid}/stat"))
        .and_then(|mut f| f.read_to_string(&mut stat))
        .ok()?;
    // The command name may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether `pid` is still the process that was started at `start_time`, and not a zombie.
pub fn process_alive(pid: i32, start_time: u64) -> bool {
    matches!(process_stat(pid), Some((state, start)) if start == start_time && state != 'Z' && state != 'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        for ok in ["a", "abc-DEF_1.2+3"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn own_process_is_alive_and_start_time_matters() {
        let me = std::process::id() as i32;
        let (_, start) = process_stat(me).expect("stat self");
        assert!(process_alive(me, start));
        assert!(!process_alive(me, start + 1));
    }

    #[test]
    fn claim_is_exclusive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = StateRoot::new(dir.path().join("root"));
        root.claim("c1").expect("first claim");
        assert!(matches!(root.claim("c1"), Err(Error::AlreadyExists(_))));
        let c = root.load("c1").expect("load");
        assert_eq!(c.status(), Status::Creating);
        assert!(matches!(root.load("nope"), Err(Error::NotFound(_))));
    }
}
