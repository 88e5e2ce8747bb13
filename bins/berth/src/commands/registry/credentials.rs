//! Credentials in the docker CLI's own file, `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`), under `"auths"`: what `docker login` stored works for berth and
//! the other way round. Other keys of the file are kept as they are.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use serde_json::{json, Value};

/// Docker Hub's key in `auths`.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

pub fn config_path() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").context("neither DOCKER_CONFIG nor HOME is set")?;
    Ok(PathBuf::from(home).join(".docker/config.json"))
}

fn read_config() -> Result<Value> {
    let path = config_path()?;
    match std::fs::read(&path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(json!({})),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not valid JSON", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// Write the file whole, readable by its owner only, through a rename.
fn write_config(config: &Value) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let path = config_path()?;
    let dir = path.parent().context("config path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("create a file in {}", dir.display()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    tmp.write_all(serde_json::to_string_pretty(config)?.as_bytes())?;
    tmp.persist(&path)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// The `auths` key for a registry: Docker Hub's URL, else the host as given.
pub fn key_of(registry: &str) -> String {
    match registry {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.into(),
        r => r
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
}

/// The keys an entry for `key` may have been stored under (with or without a scheme).
fn candidates(key: &str) -> Vec<String> {
    if key == DOCKER_HUB {
        return vec![key.into(), "docker.io".into(), "index.docker.io".into()];
    }
    vec![
        key.into(),
        format!("https://{key}"),
        format!("http://{key}"),
        format!("https://{key}/"),
        format!("http://{key}/"),
    ]
}

/// The stored username and password for `registry`, if any.
pub fn lookup(registry: &str) -> Result<Option<(String, String)>> {
    let config = read_config()?;
    let key = key_of(registry);
    let Some(entry) = candidates(&key)
        .iter()
        .find_map(|k| config["auths"].get(k).cloned())
    else {
        return Ok(None);
    };
    let auth = entry["auth"].as_str().unwrap_or_default();
    if auth.is_empty() {
        if let Some(helper) = config["credsStore"].as_str() {
            bail!("credentials for {key} are kept by the credential helper {helper:?}, which berth does not support: log in with berth to store them in {}", config_path()?.display());
        }
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(auth)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .with_context(|| format!("the stored credentials for {key} are not base64"))?;
    let (user, pass) = decoded
        .split_once(':')
        .with_context(|| format!("the stored credentials for {key} are not user:password"))?;
    Ok(Some((user.to_string(), pass.to_string())))
}

pub fn store(registry: &str, username: &str, password: &str) -> Result<()> {
    let mut config = read_config()?;
    if !config["auths"].is_object() {
        config["auths"] = json!({});
    }
    let auth = STANDARD.encode(format!("{username}:{password}"));
    config["auths"][key_of(registry)] = json!({ "auth": auth });
    write_config(&config)
}

/// Remove the stored credentials; false when there were none.
pub fn remove(registry: &str) -> Result<bool> {
    let mut config = read_config()?;
    let key = key_of(registry);
    let Some(auths) = config["auths"].as_object_mut() else {
        return Ok(false);
    };
    let before = auths.len();
    for k in candidates(&key) {
        auths.remove(&k);
    }
    if auths.len() == before {
        return Ok(false);
    }
    write_config(&config)?;
    Ok(true)
}

/// The X-Registry-Auth header for `registry`: its stored credentials, or `{}`.
pub fn registry_auth_header(registry: &str) -> Result<String> {
    let value = match lookup(registry)? {
        Some((username, password)) => {
            json!({"username": username, "password": password, "serveraddress": key_of(registry)})
        }
        None => json!({}),
    };
    Ok(URL_SAFE.encode(serde_json::to_vec(&value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(key_of("docker.io"), DOCKER_HUB);
        assert_eq!(key_of("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert!(candidates("h:1").contains(&"https://h:1".to_string()));
    }
}
