//! Per-registry mirrors and endpoints, in containerd's `hosts.toml` model: a directory holds
//! `<registry host>/hosts.toml` (and `_default/hosts.toml` for every other registry), each
//! with an optional `server` and `[host."URL"]` tables tried in order before it. A pull of
//! `gcr.io/a/b:1` goes to gcr.io's hosts that may pull (and resolve, for a tag), then to
//! its `server` (gcr.io itself when none is named).
//!
//! Parsing and host selection live here, free of HTTP; the client turns each [`Endpoint`]
//! into a connection (CA files, skip_verify, headers) when it is configured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::hosts::api_host;

/// What a host may be asked to do (containerd's host capabilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub pull: bool,
    pub resolve: bool,
    pub push: bool,
}

impl Capabilities {
    pub const ALL: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: true,
    };

    fn covers(self, need: Need) -> bool {
        match need {
            Need::Pull => self.pull,
            Need::Resolve => self.pull && self.resolve,
            Need::Push => self.push,
        }
    }
}

/// The operation hosts are chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Fetch content by digest.
    Pull,
    /// Turn a tag into a digest, then fetch: only a trusted host may do that.
    Resolve,
    Push,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// One place to send a registry's API requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// `host[:port]`.
    pub host: String,
    /// The API root's path: `/v2` unless the URL or `override_path` says otherwise.
    pub root: String,
    pub capabilities: Capabilities,
    pub skip_verify: bool,
    /// CA certificate files (PEM), absolute.
    pub ca: Vec<PathBuf>,
    /// Extra headers sent with every request to this endpoint.
    pub headers: Vec<(String, String)>,
    /// A `[host]` entry of a hosts.toml (a mirror), rather than the registry itself.
    pub mirror: bool,
    /// Named by no hosts.toml: the registry host as Docker reaches it (HTTPS, and plain HTTP
    /// when that fails and the host is insecure).
    pub implicit: bool,
    /// The registry asked for, when this endpoint is another host (a mirror): pulls tell it
    /// in an `ns` query parameter, as containerd's do, for mirrors that serve several.
    pub ns: Option<String>,
}

impl Endpoint {
    /// The registry itself, as berth reaches it without a hosts.toml.
    pub fn implicit(domain: &str) -> Endpoint {
        Endpoint {
            scheme: Scheme::Https,
            host: api_host(domain).to_string(),
            root: "/v2".into(),
            capabilities: Capabilities::ALL,
            skip_verify: false,
            ca: Vec::new(),
            headers: Vec::new(),
            mirror: false,
            implicit: true,
            ns: None,
        }
    }

    /// `https://host:port`.
    pub fn origin(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.host)
    }
}

/// Why a registry configuration directory was refused. Each names the file (and, for a
/// TOML error, the line).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("registry config {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TOML error's text carries the line and column.
    #[error("registry config {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("registry config {}, line {line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Every registry's hosts, from a configuration directory.
#[derive(Debug, Clone, Default)]
pub struct RegistryHosts {
    /// By namespace directory name (`gcr.io`, `localhost:5000`, `_default`).
    namespaces: BTreeMap<String, Vec<Endpoint>>,
}

/// A hosts.toml as written: the server's settings at the top level, the mirrors in `host`.
/// Unknown keys are refused (a misspelt `skip_verfy` must not go unnoticed); `client`,
/// `proxy` and `dial_timeout`, which containerd also knows, are refused as unsupported.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    server: Option<String>,
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    skip_verify: bool,
    ca: Option<OneOrMany>,
    #[serde(default)]
    override_path: bool,
    #[serde(default)]
    header: BTreeMap<String, OneOrMany>,
    /// In file order (the `toml` crate keeps it): mirrors are tried in that order.
    #[serde(default)]
    host: toml::Table,
}

/// The settings of a `[host."URL"]` table, which the top level shares for the server
/// (serde's `flatten` cannot be combined with `deny_unknown_fields`, hence two structs).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostToml {
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    skip_verify: bool,
    ca: Option<OneOrMany>,
    #[serde(default)]
    override_path: bool,
    #[serde(default)]
    header: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

impl RegistryHosts {
    /// Read `dir/*/hosts.toml`. A missing directory configures nothing; a directory without
    /// a hosts.toml is skipped (containerd would look for Docker-style certificates there).
    pub fn load(dir: &Path) -> Result<RegistryHosts, ConfigError> {
        let io = |path: &Path, source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RegistryHosts::default())
            }
            Err(e) => return Err(io(dir, e)),
        };
        let mut namespaces = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| io(dir, e))?;
            let file = entry.path().join("hosts.toml");
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(io(&file, e)),
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            namespaces.insert(name.clone(), parse(&name, &text, &file)?);
        }
        Ok(RegistryHosts { namespaces })
    }

    /// As [`RegistryHosts::load`], from text already read (tests, and callers that keep the
    /// configuration elsewhere). `file` is the name errors give.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        file: &Path,
    ) -> Result<RegistryHosts, ConfigError> {
        let mut namespaces = BTreeMap::new();
        for (name, text) in files {
            namespaces.insert(name.to_string(), parse(name, text, file)?);
        }
        Ok(RegistryHosts { namespaces })
    }

    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }

    /// Every configured endpoint (to set up connections for).
    pub fn all(&self) -> impl Iterator<Item = &Endpoint> {
        self.namespaces.values().flatten()
    }

    /// The namespace `domain` falls in: `host_port_`, `host:port`, then `_default`.
    fn namespace(&self, domain: &str) -> Option<&Vec<Endpoint>> {
        let underscored = domain
            .rsplit_once(':')
            .map(|(h, p)| format!("{h}_{p}_"))
            .filter(|_| !domain.starts_with('['));
        let found = underscored
            .as_deref()
            .into_iter()
            .chain([domain, "_default"])
            .find_map(|n| self.namespaces.get(n));
        found
    }

    /// The endpoints to try, in order, for `need` on the registry `domain`: its mirrors that
    /// may do it, then its server; the registry itself when nothing configures it.
    pub fn endpoints(&self, domain: &str, need: Need) -> Vec<Endpoint> {
        let name = if domain == "index.docker.io" {
            "docker.io"
        } else {
            domain
        };
        match self.namespace(name) {
            None => vec![Endpoint::implicit(domain)],
            Some(list) => list
                .iter()
                .map(|e| {
                    // `_default`'s server, when it names none, is the registry asked for.
                    let mut e = e.clone();
                    let registry = api_host(domain);
                    if !e.mirror && e.host.is_empty() {
                        e.host = registry.to_string();
                    }
                    if e.host != registry {
                        e.ns = Some(domain.to_string());
                    }
                    e
                })
                .filter(|e| e.capabilities.covers(need))
                .collect(),
        }
    }
}

/// The line (1-based) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// The line a `[host."URL"]` table starts on, for errors about it.
fn host_line(text: &str, url: &str) -> usize {
    let needle = format!("\"{url}\"");
    text.find(&needle).map_or(1, |at| line_of(text, at))
}

/// One namespace's hosts.toml: its mirrors in order, then its server.
fn parse(namespace: &str, text: &str, path: &Path) -> Result<Vec<Endpoint>, ConfigError> {
    let parsed: FileToml = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let base = path.parent().unwrap_or(Path::new("/"));
    let mut out = Vec::new();
    for (url, value) in parsed.host {
        let line = host_line(text, &url);
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        let settings: HostToml = value
            .try_into()
            .map_err(|e: toml::de::Error| invalid(format!("host {url:?}: {}", e.message())))?;
        out.push(endpoint(&url, settings, base, true).map_err(invalid)?);
    }
    let server_line = text
        .lines()
        .position(|l| l.trim_start().starts_with("server"))
        .map_or(1, |i| i + 1);
    let settings = HostToml {
        capabilities: parsed.capabilities,
        skip_verify: parsed.skip_verify,
        ca: parsed.ca,
        override_path: parsed.override_path,
        header: parsed.header,
    };
    let server = match parsed.server {
        Some(url) => endpoint(&url, settings, base, false),
        // Without a server the registry named by the namespace is the fallback; `_default`
        // stands for every registry, so its host is filled in per request.
        None => {
            let host = if namespace == "_default" {
                String::new()
            } else {
                api_host(namespace).to_string()
            };
            let placeholder = if host.is_empty() { "_" } else { &host };
            endpoint(&format!("https://{placeholder}"), settings, base, false).map(|mut e| {
                e.host = host;
                e.implicit = e.ca.is_empty() && !e.skip_verify;
                e
            })
        }
    }
    .map_err(|message| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: server_line,
        message,
    })?;
    out.push(server);
    Ok(out)
}

/// An endpoint from a URL (`https://mirror:5000`, `http://10.0.0.1/v2/upstream`) and its
/// settings; relative CA paths are relative to the hosts.toml's directory.
fn endpoint(url: &str, s: HostToml, base: &Path, mirror: bool) -> Result<Endpoint, String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if url.contains("://") {
        return Err(format!(
            "{url:?}: only http:// and https:// URLs are allowed"
        ));
    } else {
        // containerd takes a bare host as HTTPS.
        (Scheme::Https, url)
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(format!("{url:?}: no host in the URL"));
    }
    if host.contains(['?', '#', '@', ' ']) {
        return Err(format!("{url:?}: not a host[:port]"));
    }
    let path = path.trim_matches('/');
    let root = match (path.is_empty(), s.override_path) {
        (true, true) => return Err(format!("{url:?}: override_path needs a path in the URL")),
        (true, false) => "/v2".to_string(),
        (false, true) => format!("/{path}"),
        (false, false) if path == "v2" || path.ends_with("/v2") => format!("/{path}"),
        (false, false) => format!("/{path}/v2"),
    };
    let capabilities = match s.capabilities {
        None => Capabilities::ALL,
        Some(list) => {
            let mut c = Capabilities {
                pull: false,
                resolve: false,
                push: false,
            };
            for cap in list {
                match cap.as_str() {
                    "pull" => c.pull = true,
                    "resolve" => c.resolve = true,
                    "push" => c.push = true,
                    other => {
                        return Err(format!(
                            "{url:?}: unknown capability {other:?} (pull, resolve or push)"
                        ))
                    }
                }
            }
            c
        }
    };
    let ca =
        s.ca.map(OneOrMany::into_vec)
            .unwrap_or_default()
            .into_iter()
            .map(|p| base.join(p))
            .collect();
    let headers = s
        .header
        .into_iter()
        .flat_map(|(k, v)| v.into_vec().into_iter().map(move |v| (k.clone(), v)))
        .collect();
    Ok(Endpoint {
        scheme,
        host: host.to_string(),
        root,
        capabilities,
        skip_verify: s.skip_verify,
        ca,
        headers,
        mirror,
        implicit: false,
        ns: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(files: &[(&str, &str)]) -> RegistryHosts {
        RegistryHosts::from_files(files.iter().copied(), Path::new("/etc/berth/certs.d/x"))
            .expect("valid")
    }

    fn error(text: &str) -> String {
        RegistryHosts::from_files([("gcr.io", text)], Path::new("/c/gcr.io/hosts.toml"))
            .expect_err("invalid")
            .to_string()
    }

    fn urls(list: &[Endpoint]) -> Vec<String> {
        list.iter()
            .map(|e| format!("{}{}", e.origin(), e.root))
            .collect()
    }

    #[test]
    fn mirrors_in_file_order_then_the_server() {
        let h = hosts(&[(
            "gcr.io",
            r#"
server = "https://gcr.io"

[host."http://127.0.0.1:5001"]
  capabilities = ["pull", "resolve"]

[host."https://mirror.example/base"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  ca = ["ca.pem", "/abs/other.pem"]
  [host."https://mirror.example/base".header]
    x-one = "1"
    x-many = ["a", "b"]

[host."https://odd.example/api/root"]
  override_path = true
"#,
        )]);
        let list = h.endpoints("gcr.io", Need::Resolve);
        assert_eq!(
            urls(&list),
            [
                "http://127.0.0.1:5001/v2",
                "https://mirror.example/base/v2",
                "https://odd.example/api/root",
                "https://gcr.io/v2"
            ]
        );
        let m = &list[1];
        assert!(m.skip_verify && m.mirror && !m.implicit);
        assert_eq!(
            m.ca,
            [
                PathBuf::from("/etc/berth/certs.d/ca.pem"),
                PathBuf::from("/abs/other.pem")
            ]
        );
        assert_eq!(
            m.headers,
            [
                ("x-many".to_string(), "a".to_string()),
                ("x-many".into(), "b".into()),
                ("x-one".into(), "1".into())
            ]
        );
        assert!(!list[3].mirror);
        assert_eq!(list[0].ns.as_deref(), Some("gcr.io"));
        assert_eq!(list[3].ns, None, "the registry itself needs no ns");
        // Other registries are untouched.
        assert_eq!(
            urls(&h.endpoints("quay.io", Need::Resolve)),
            ["https://quay.io/v2"]
        );
        assert!(h.endpoints("quay.io", Need::Pull)[0].implicit);
    }

    #[test]
    fn capabilities_choose_the_hosts() {
        let h = hosts(&[(
            "docker.io",
            r#"
[host."https://public-mirror"]
  capabilities = ["pull"]
[host."https://private-mirror"]
  capabilities = ["pull", "resolve"]
[host."https://push-here"]
  capabilities = ["push"]
"#,
        )]);
        // A tag needs resolve; a digest only pull; the default server may do everything.
        assert_eq!(
            urls(&h.endpoints("docker.io", Need::Resolve)),
            [
                "https://private-mirror/v2",
                "https://registry-1.docker.io/v2"
            ]
        );
        assert_eq!(
            urls(&h.endpoints("docker.io", Need::Pull)),
            [
                "https://public-mirror/v2",
                "https://private-mirror/v2",
                "https://registry-1.docker.io/v2"
            ]
        );
        assert_eq!(
            urls(&h.endpoints("index.docker.io", Need::Push)),
            ["https://push-here/v2", "https://registry-1.docker.io/v2"]
        );
        // The server with its own capabilities can be left out.
        let only_mirror = hosts(&[(
            "gcr.io",
            "capabilities = []\n[host.\"http://m\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
        )]);
        assert_eq!(
            urls(&only_mirror.endpoints("gcr.io", Need::Resolve)),
            ["http://m/v2"]
        );
        assert!(only_mirror.endpoints("gcr.io", Need::Push).is_empty());
    }

    #[test]
    fn namespaces_with_ports_and_the_default() {
        let h = hosts(&[
            ("_default", "[host.\"http://everything\"]\n"),
            ("reg_5000_", "server = \"http://reg:5000\"\n"),
            ("other:5000", "[host.\"http://o\"]\n"),
        ]);
        assert_eq!(
            urls(&h.endpoints("reg:5000", Need::Pull)),
            ["http://reg:5000/v2"]
        );
        assert_eq!(
            urls(&h.endpoints("other:5000", Need::Pull)),
            ["http://o/v2", "https://other:5000/v2"]
        );
        // `_default`'s server is whichever registry is asked for.
        assert_eq!(
            urls(&h.endpoints("quay.io", Need::Pull)),
            ["http://everything/v2", "https://quay.io/v2"]
        );
        assert_eq!(
            urls(&h.endpoints("docker.io", Need::Pull)),
            ["http://everything/v2", "https://registry-1.docker.io/v2"]
        );
        assert!(h.endpoints("quay.io", Need::Pull)[1].implicit);
    }

    #[test]
    fn bad_files_name_the_file_and_line() {
        let syntax = error("server = \"https://gcr.io\"\n[host.\"http://m\"\ncapabilities = 1\n");
        assert!(syntax.contains("/c/gcr.io/hosts.toml"), "{syntax}");
        assert!(syntax.contains("line 2"), "{syntax}");

        let typo =
            error("server = \"https://gcr.io\"\n\n[host.\"http://m\"]\n  skip_verfy = true\n");
        assert!(typo.contains("line 3"), "{typo}");
        assert!(typo.contains("skip_verfy"), "{typo}");

        let cap = error("[host.\"http://m\"]\ncapabilities = [\"pull\", \"fly\"]\n");
        assert!(cap.contains("line 1") && cap.contains("\"fly\""), "{cap}");

        let scheme = error("\n\nserver = \"ftp://gcr.io\"\n");
        assert!(
            scheme.contains("line 3") && scheme.contains("ftp"),
            "{scheme}"
        );

        let top = error("server = \"https://gcr.io\"\nmirrors = [\"x\"]\n");
        assert!(top.contains("line 2") && top.contains("mirrors"), "{top}");

        let unsupported = error("[host.\"http://m\"]\nclient = \"c.pem\"\n");
        assert!(unsupported.contains("client"), "{unsupported}");
    }

    #[test]
    fn a_missing_directory_configures_nothing() {
        let h = RegistryHosts::load(Path::new("/nonexistent/berth/certs.d")).expect("empty");
        assert!(h.is_empty());
        assert!(h.endpoints("gcr.io", Need::Resolve)[0].implicit);
    }

    #[test]
    fn load_reads_each_namespace_directory() {
        let dir = tempfile::tempdir().expect("tmp");
        let ns = dir.path().join("registry.k8s.io");
        std::fs::create_dir(&ns).expect("mkdir");
        std::fs::write(ns.join("hosts.toml"), "[host.\"http://127.0.0.1:1\"]\n").expect("write");
        // A directory with only certificates is skipped, as is a stray file.
        std::fs::create_dir(dir.path().join("quay.io")).expect("mkdir");
        std::fs::write(dir.path().join("README"), "x").expect("write");
        let h = RegistryHosts::load(dir.path()).expect("load");
        assert_eq!(
            urls(&h.endpoints("registry.k8s.io", Need::Resolve)),
            ["http://127.0.0.1:1/v2", "https://registry.k8s.io/v2"]
        );
        let bad = dir.path().join("gcr.io");
        std::fs::create_dir(&bad).expect("mkdir");
        std::fs::write(bad.join("hosts.toml"), "server = \n").expect("write");
        let e = RegistryHosts::load(dir.path())
            .expect_err("bad")
            .to_string();
        assert!(
            e.contains(&bad.join("hosts.toml").display().to_string()) && e.contains("line 1"),
            "{e}"
        );
    }
}
