//! CRI records (pods, and the CRI's view of containers): one JSON file each under the data
//! root (written whole, then renamed), and a map in memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k8s_cri::v1::PodSandboxConfig;
use serde::{Deserialize, Serialize};

use crate::error::{CriError, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pod {
    pub id: String,
    pub config: PodSandboxConfig,
    /// Unix nanoseconds.
    pub created_at: i64,
    pub ready: bool,
    pub runtime_handler: String,
    /// The namespace files held for the pod (None: the node's).
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
    /// The pid 1 of the pod's shared pid namespace (berth-pause), if it has one.
    pub pid_holder: Option<i32>,
    /// The CNI result of ADD (for DEL and the pod's addresses).
    pub cni_result: Option<serde_json::Value>,
    pub ips: Vec<String>,
    /// The pod's hosts, hostname and resolv.conf.
    pub etc_dir: PathBuf,
    /// The pod's /dev/shm tmpfs (with an IPC namespace of its own).
    #[serde(default)]
    pub shm: Option<PathBuf>,
}

impl Pod {
    /// containerd's reserved name of a pod: one pod per name, uid, namespace and attempt.
    pub fn reserved_name(&self) -> String {
        let m = self.config.metadata.clone().unwrap_or_default();
        format!("{}_{}_{}_{}", m.name, m.namespace, m.uid, m.attempt)
    }
}

/// What a store keeps: a record with an id.
pub trait Record: Clone + Serialize + serde::de::DeserializeOwned {
    fn id(&self) -> &str;
    /// The record's name that must be unique (None: no such rule).
    fn reserved_name(&self) -> Option<String>;
    const WHAT: &'static str;
}

impl Record for Pod {
    fn id(&self) -> &str {
        &self.id
    }
    fn reserved_name(&self) -> Option<String> {
        Some(Pod::reserved_name(self))
    }
    const WHAT: &'static str = "pod sandbox";
}

pub type Pods = Store<Pod>;

pub struct Store<T> {
    dir: PathBuf,
    map: Mutex<HashMap<String, T>>,
}

impl<T: Record> Store<T> {
    pub fn open(dir: &Path) -> Result<Store<T>> {
        std::fs::create_dir_all(dir).map_err(|source| CriError::Io {
            what: format!("create {}", dir.display()),
            source,
        })?;
        let mut map = HashMap::new();
        let entries = std::fs::read_dir(dir).map_err(|source| CriError::Io {
            what: format!("read {}", dir.display()),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<T>(&b).ok())
            {
                Some(record) => {
                    map.insert(record.id().to_string(), record);
                }
                None => {
                    tracing::warn!(path = %path.display(), what = T::WHAT, "skipped an unreadable record")
                }
            }
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            map: Mutex::new(map),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, T>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, record: &T) -> Result<()> {
        let path = self.dir.join(format!("{}.json", record.id()));
        let tmp = self.dir.join(format!(".{}.json.tmp", record.id()));
        let io = |source| CriError::Io {
            what: format!("write {}", path.display()),
            source,
        };
        let bytes = serde_json::to_vec(record).map_err(|e| io(std::io::Error::other(e)))?;
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Add a new record, unless one with the same reserved name exists.
    pub fn insert(&self, record: T) -> Result<()> {
        let mut map = self.lock();
        if let Some(name) = record.reserved_name() {
            if let Some(other) = map
                .values()
                .find(|r| r.reserved_name().as_ref() == Some(&name))
            {
                return Err(CriError::FailedPrecondition(format!(
                    "failed to reserve {} name {name:?}: name {name:?} is reserved for {:?}",
                    T::WHAT,
                    other.id()
                )));
            }
        }
        self.save(&record)?;
        map.insert(record.id().to_string(), record);
        Ok(())
    }

    pub fn update(&self, id: &str, f: impl FnOnce(&mut T)) -> Result<T> {
        let mut map = self.lock();
        let record = map
            .get_mut(id)
            .ok_or_else(|| CriError::NotFound(format!("{} {id} not found", T::WHAT)))?;
        f(record);
        let copy = record.clone();
        self.save(&copy)?;
        Ok(copy)
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let path = self.dir.join(format!("{id}.json"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CriError::Io {
                    what: format!("remove {}", path.display()),
                    source,
                })
            }
        }
        self.lock().remove(id);
        Ok(())
    }

    /// A record by id or unique id prefix.
    pub fn get(&self, id: &str) -> Result<T> {
        let map = self.lock();
        if let Some(r) = map.get(id) {
            return Ok(r.clone());
        }
        let mut found = map
            .values()
            .filter(|r| !id.is_empty() && r.id().starts_with(id));
        match (found.next(), found.next()) {
            (Some(r), None) => Ok(r.clone()),
            (Some(_), Some(_)) => Err(CriError::InvalidArgument(format!(
                "{} id prefix {id:?} is ambiguous",
                T::WHAT
            ))),
            _ => Err(CriError::NotFound(format!("{} {id} not found", T::WHAT))),
        }
    }

    pub fn list(&self) -> Vec<T> {
        self.lock().values().cloned().collect()
    }
}
