//! The bundle's config.json: loading, validation, and the default one that `spec` writes.

mod defaults;
mod extras;
mod spelling;
mod validate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

pub use defaults::{default_spec, SpecFlavor};
pub use validate::validate;

/// The runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.2.0";

/// A bundle: its canonical directory and its parsed config, loaded once per command.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Self> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io("open bundle", dir, e))?;
        let spec = load(&dir)?;
        Ok(Bundle { dir, spec })
    }

    /// Whether process.terminal is set.
    pub fn terminal(&self) -> bool {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
    }
}

/// Read and parse `<bundle>/config.json`. Unknown properties are ignored, as the
/// runtime-spec requires; known ones with wrong types are errors naming line and column.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    spelling::parse(&text, "/process/scheduler/flags")
        .map_err(|e| Error::config(format!("{}: {e}", path.display())))
}

/// Parse a process (`exec --process`), with runtime-spec's spellings (see `spelling`).
pub fn parse_process(text: &[u8]) -> serde_json::Result<oci_spec::runtime::Process> {
    spelling::parse(text, "/scheduler/flags")
}

/// Whether the container joins an existing pid namespace, where processes of another
/// container could see its init before it execs (see `sys::sealed_exe`).
pub fn joins_pid_namespace(spec: &Spec) -> bool {
    spec.linux()
        .iter()
        .flat_map(|l| l.namespaces().iter().flatten())
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_some())
}

/// The rootfs of a bundle: `root.path`, relative to the bundle unless absolute.
pub fn rootfs_path(bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::config("root is missing"))?;
    let path = root.path();
    if path.as_os_str().is_empty() {
        return Err(Error::config("root.path is empty"));
    }
    Ok(if path.is_absolute() {
        path.clone()
    } else {
        bundle.join(path)
    })
}
