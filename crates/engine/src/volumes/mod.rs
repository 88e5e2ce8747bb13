//! Volumes of the `local` driver, as dockerd's: `<root>/<name>/_data` holds the data, and
//! `<root>/<name>/volume.json` what the volume was created with (labels, driver options).
//!
//! A volume directory is complete before it is visible: a create writes everything into
//! `<root>/_creating/<name>` and renames it into place (one rename); a removal renames it
//! into `<root>/_removing/` and deletes it there. A start of berthd empties both, so a
//! crash at any instant leaves either the whole volume or nothing. Names start with an
//! alphanumeric character, so `_creating` and `_removing` can never be volumes.
//!
//! Which containers use a volume is not stored here: it is read from the containers'
//! records (a volume referenced by any container is in use, running or not, as in moby).
//! Volumes with driver options (a tmpfs, a device, a bind of a host directory) are mounted
//! on their `_data` while a container that uses them runs, and unmounted after the last.

mod copyup;
pub mod mounts;
mod ops;
mod options;
mod tree;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use copyup::copy_up;
pub use ops::Usage;
pub use options::check_options;

/// The label moby puts on the anonymous volumes it creates for containers (`-v /path`, an
/// image's VOLUME); `volume prune` removes only these unless told `all`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The only driver berth has.
pub const LOCAL: &str = "local";

const CREATING: &str = "_creating";
const REMOVING: &str = "_removing";
const RECORD: &str = "volume.json";

/// What a volume was created with (its record on disk).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    /// RFC 3339, seconds (as moby's local driver reports it).
    pub created_at: String,
    /// None when the request gave none (a Go nil map, shown as `null`), as moby keeps the
    /// difference between no labels and an empty set of them.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// The local driver's options: `type`, `device`, `o`; None as `labels`.
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

/// What an absent map reads as.
static NONE: BTreeMap<String, String> = BTreeMap::new();

impl Volume {
    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.labels.as_ref().unwrap_or(&NONE)
    }

    pub fn options(&self) -> &BTreeMap<String, String> {
        self.options.as_ref().unwrap_or(&NONE)
    }

    pub fn anonymous(&self) -> bool {
        self.labels().contains_key(ANONYMOUS_LABEL)
    }

    /// Mounted while used (a tmpfs, a device, a bind of a host directory).
    pub fn needs_mount(&self) -> bool {
        self.options().contains_key("device") || self.options().contains_key("type")
    }
}

/// A request for a volume (`docker volume create`, or one a container asks for).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeRequest {
    /// Empty: a generated name.
    pub name: String,
    /// Empty: `local`.
    pub driver: String,
    /// None: not given (see [`Volume::labels`]).
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// moby's local driver's rule for names (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`): no `/`, no `..`
/// alone, nothing that could leave the volumes' root.
pub fn check_name(name: &str) -> Result<()> {
    if name.len() == 1 {
        return Err(Error::InvalidArgument(
            "volume name is too short, names should be at least two alphanumeric characters".into(),
        ));
    }
    let b = name.as_bytes();
    let valid = !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c));
    if !valid {
        return Err(Error::InvalidArgument(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

/// The driver by name: only `local` (moby's error for a plugin it cannot find).
pub fn check_driver(driver: &str) -> Result<()> {
    match driver {
        "" | LOCAL => Ok(()),
        other => Err(Error::NotFound(format!(
            "error looking up volume plugin {other}: plugin \"{other}\" not found"
        ))),
    }
}

/// Check a request as dockerd's local driver does (name, driver, options).
pub fn check_request(req: &VolumeRequest) -> Result<()> {
    if !req.name.is_empty() {
        check_name(&req.name).map_err(|e| prefixed("create", &req.name, e))?;
    }
    check_driver(&req.driver).map_err(|e| prefixed("create", &req.name, e))?;
    check_options(req.options.as_ref().unwrap_or(&NONE))
        .map_err(|e| prefixed("create", &req.name, e))
}

/// moby's OpErr shape: `create NAME: why`.
fn prefixed(op: &str, name: &str, e: Error) -> Error {
    let say = |m: String| {
        if name.is_empty() {
            format!("{op}: {m}")
        } else {
            format!("{op} {name}: {m}")
        }
    };
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(say(m)),
        Error::NotFound(m) => Error::NotFound(say(m)),
        Error::Conflict(m) => Error::Conflict(say(m)),
        Error::Io(m) => Error::Io(say(m)),
        other => other,
    }
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io(format!("{what} {}: {e}", path.display()))
}

/// Every volume, in memory and on disk.
pub struct Volumes {
    root: PathBuf,
    /// Held across a change that depends on who uses a volume (a create of a container
    /// that references volumes, a removal, a prune), so that a volume cannot be removed
    /// between a container's check and its record.
    changes: Mutex<()>,
    map: Mutex<HashMap<String, Volume>>,
    /// The running containers that use each mounted (driver-options) volume.
    active: Mutex<HashMap<String, HashSet<String>>>,
}

impl Volumes {
    /// Load every volume under `root` (made 0701, as moby keeps it), finishing what a crash
    /// left half done.
    pub fn open(root: &Path) -> Result<Volumes> {
        std::fs::create_dir_all(root).map_err(|e| io("create", root, e))?;
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o701))
            .map_err(|e| io("chmod", root, e))?;
        for leftover in [CREATING, REMOVING] {
            let dir = root.join(leftover);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if let Err(e) = discard(&entry.path()) {
                        tracing::warn!("{e}");
                    }
                }
            }
        }
        let mut map = HashMap::new();
        for entry in std::fs::read_dir(root)
            .map_err(|e| io("read", root, e))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_name(&name).is_err() {
                continue;
            }
            let path = entry.path().join(RECORD);
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Volume>(&b).map_err(|e| e.to_string()))
            {
                Ok(v) if v.name == name => {
                    map.insert(name, v);
                }
                Ok(v) => tracing::warn!("skipping {}: it names {:?}", path.display(), v.name),
                Err(e) => tracing::warn!("skipping volume {name}: {e}"),
            }
        }
        Ok(Volumes {
            root: root.to_path_buf(),
            changes: Mutex::new(()),
            map: Mutex::new(map),
            active: Mutex::new(HashMap::new()),
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Volume>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hold while checking who uses volumes and acting on it.
    pub fn changes(&self) -> MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the volume's data lives (its Mountpoint).
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        self.map()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("get {name}: no such volume")))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.map().contains_key(name)
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        let mut v: Vec<Volume> = self.map().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Create a volume (checked first); an existing one of that name is returned as it is,
    /// as dockerd returns it. The volume and whether it was created now.
    pub fn create(&self, req: &VolumeRequest) -> Result<(Volume, bool)> {
        check_request(req)?;
        let name = if req.name.is_empty() {
            crate::containers::random_id()?
        } else {
            req.name.clone()
        };
        if let Some(v) = self.map().get(&name) {
            return Ok((v.clone(), false));
        }
        let volume = Volume {
            name: name.clone(),
            driver: LOCAL.to_string(),
            created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            labels: req.labels.clone(),
            options: req.options.clone(),
        };
        let mut map = self.map();
        if let Some(v) = map.get(&name) {
            return Ok((v.clone(), false));
        }
        self.write_new(&volume)
            .map_err(|e| prefixed("create", &name, e))?;
        map.insert(name, volume.clone());
        Ok((volume, true))
    }

    /// Write a new volume's directory in the staging area, then rename it into place.
    fn write_new(&self, volume: &Volume) -> Result<()> {
        let staging = self.root.join(CREATING);
        private_dir(&staging)?;
        let dir = staging.join(&volume.name);
        let _ = discard(&dir);
        let written = (|| {
            let data = dir.join("_data");
            std::fs::create_dir_all(&data).map_err(|e| io("create", &data, e))?;
            for (path, mode) in [(&dir, 0o701), (&data, 0o755)] {
                std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .map_err(|e| io("chmod", path, e))?;
            }
            let bytes = serde_json::to_vec(volume).map_err(|e| Error::Io(e.to_string()))?;
            write_synced(&dir.join(RECORD), &bytes)?;
            let target = self.root.join(&volume.name);
            nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                &dir,
                nix::fcntl::AT_FDCWD,
                &target,
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            )
            .map_err(|e| io("rename into", &target, e))?;
            sync_dir(&self.root);
            Ok(())
        })();
        if written.is_err() {
            let _ = discard(&dir);
        }
        written
    }

    /// Remove an unused volume (the caller checked, holding [`Volumes::changes`]): its
    /// directory leaves the store in one rename, then is deleted. The bytes it held.
    pub fn remove_unused(&self, name: &str) -> Result<u64> {
        let volume = self.get(name)?;
        let dir = self.root.join(name);
        let data = dir.join("_data");
        if volume.needs_mount() {
            options::unmount(&data)?;
        }
        // Never delete what another filesystem holds (a device or host directory still
        // mounted there).
        if tree::is_mount_point(&data) {
            return Err(Error::Conflict(format!(
                "remove {name}: {} is still mounted",
                data.display()
            )));
        }
        let size = berth_image::dir_size::bytes_under(&data);
        let removing = self.root.join(REMOVING);
        private_dir(&removing)?;
        let target = removing.join(format!("{name}.{}", &crate::containers::random_id()?[..12]));
        std::fs::rename(&dir, &target).map_err(|e| io("remove", &dir, e))?;
        sync_dir(&self.root);
        self.map().remove(name);
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        if let Err(e) = discard(&target) {
            tracing::warn!("volume {name}: {e}");
        }
        Ok(size)
    }

    /// The bytes a volume's data holds (`system df -v`).
    pub fn size(&self, name: &str) -> u64 {
        berth_image::dir_size::bytes_under(&self.data_path(name))
    }

    /// Container `id` is about to start with `name`: a volume with driver options is
    /// mounted on its `_data` if no running container has it mounted yet.
    pub fn acquire(&self, name: &str, id: &str) -> Result<()> {
        let volume = self.get(name)?;
        if !volume.needs_mount() {
            return Ok(());
        }
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        let users = active.entry(name.to_string()).or_default();
        let data = self.data_path(name);
        if users.is_empty() || !tree::is_mount_point(&data) {
            options::mount(volume.options(), &data).map_err(|e| {
                prefixed(
                    "error while mounting volume",
                    &data.display().to_string(),
                    e,
                )
            })?;
        }
        users.insert(id.to_string());
        Ok(())
    }

    /// Container `id` has ended (or did not start): the volumes it held mounted are
    /// unmounted when no other running container holds them.
    pub fn release(&self, id: &str) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        for (name, users) in active.iter_mut() {
            if users.remove(id) && users.is_empty() {
                if let Err(e) = options::unmount(&self.data_path(name)) {
                    tracing::warn!("volume {name}: {e}");
                }
            }
        }
        active.retain(|_, users| !users.is_empty());
    }

    /// After a restart of berthd: container `id` still runs with these volumes mounted.
    pub fn adopt(&self, name: &str, id: &str) {
        if self.get(name).is_ok_and(|v| v.needs_mount()) {
            self.active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name.to_string())
                .or_default()
                .insert(id.to_string());
        }
    }

    /// At berthd's start, once running containers are adopted: a volume left mounted with
    /// no running container is unmounted.
    pub fn unmount_unused(&self) {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        for v in self.list() {
            if v.needs_mount() && !active.contains_key(&v.name) {
                let _ = options::unmount(&self.data_path(&v.name));
            }
        }
    }
}

/// Write `bytes` to `path` (0600: options may hold credentials of a network share) and
/// flush them to the disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| io("write", path, e))
}

/// A staging directory only root may enter (what is in it is not a volume yet, or no more).
fn private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .and_then(|()| {
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        })
        .map_err(|e| io("create", dir, e))
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Delete a volume directory taken out of the store (never across a mount point).
fn discard(dir: &Path) -> Result<()> {
    let data = dir.join("_data");
    if tree::is_mount_point(&data) {
        options::unmount(&data)?;
    }
    tree::remove(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_the_local_driver_takes_them() {
        for good in ["ab", "data", "my_vol-1.2", "a..b", "0x"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "a", "", "../x", "..", "a/b", "/abs", ".hidden", "_x", "-x", "a b",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("a/b").is_err_and(|e| e.to_string().contains("invalid characters")));
    }

    #[test]
    fn create_is_atomic_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("volumes");
        let store = Volumes::open(&root).expect("open");
        let (v, created) = store
            .create(&VolumeRequest {
                name: "data".into(),
                labels: Some(BTreeMap::from([("a".into(), "1".into())])),
                ..Default::default()
            })
            .expect("create");
        assert!(created);
        assert!(root.join("data/_data").is_dir());
        let (again, created) = store
            .create(&VolumeRequest {
                name: "data".into(),
                ..Default::default()
            })
            .expect("create again");
        assert!(!created);
        assert_eq!(again, v);
        // A crash mid-create and mid-remove leaves staging directories: ignored, cleared.
        std::fs::create_dir_all(root.join("_creating/half/_data")).expect("mkdir");
        std::fs::create_dir_all(root.join("_removing/gone.1/_data")).expect("mkdir");
        std::fs::create_dir_all(root.join("norecord/_data")).expect("mkdir");
        let store = Volumes::open(&root).expect("reopen");
        assert_eq!(store.list(), vec![v]);
        assert!(!root.join("_creating/half").exists());
        assert!(!root.join("_removing/gone.1").exists());
        std::fs::write(store.data_path("data").join("f"), b"12345").expect("write");
        assert_eq!(store.remove_unused("data").expect("remove"), 5);
        assert!(!root.join("data").exists());
        assert!(store.get("data").is_err());
    }

    #[test]
    fn generated_names_are_64_hex() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Volumes::open(dir.path()).expect("open");
        let (v, _) = store.create(&VolumeRequest::default()).expect("create");
        assert_eq!(v.name.len(), 64);
        assert!(store
            .create(&VolumeRequest {
                name: "x/../../etc".into(),
                ..Default::default()
            })
            .is_err());
        assert!(store
            .create(&VolumeRequest {
                driver: "nfs-plugin".into(),
                ..Default::default()
            })
            .is_err_and(|e| e.to_string().contains("plugin \"nfs-plugin\" not found")));
    }
}
