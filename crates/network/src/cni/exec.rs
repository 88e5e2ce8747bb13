//! One plugin run: its binary from the bin dirs, the CNI_* environment, its configuration
//! (with name, cniVersion, prevResult and the runtime config it asks for) on stdin, the
//! result or the error object on stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use serde_json::{json, Value};

use super::{Attachment, Cni, CniError, NetworkList, Result};

#[derive(Debug, Clone, Copy)]
pub(super) enum Command {
    Add,
    Del,
    Check,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
        }
    }
}

fn find(cni: &Cni, plugin: &str) -> Result<PathBuf> {
    cni.bin_dirs
        .iter()
        .map(|d| d.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| CniError::PluginMissing {
            plugin: plugin.to_string(),
            dirs: joined(&cni.bin_dirs),
        })
}

fn joined(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// The plugin's stdin: its own object with the list's name and version, the previous
/// result, and the runtime config of the capabilities it declares.
fn stdin_config(net: &NetworkList, plugin: &Value, a: &Attachment, prev: Option<&Value>) -> Value {
    let mut conf = plugin.clone();
    conf["name"] = json!(net.name);
    conf["cniVersion"] = json!(net.cni_version);
    if let Some(prev) = prev.filter(|p| !p.is_null()) {
        conf["prevResult"] = prev.clone();
    }
    if plugin["capabilities"]["portMappings"] == json!(true) && !a.port_mappings.is_empty() {
        conf["runtimeConfig"]["portMappings"] = json!(a.port_mappings);
    }
    conf
}

pub(super) fn run(
    cni: &Cni,
    net: &NetworkList,
    plugin: &Value,
    command: Command,
    a: &Attachment,
    prev: Option<&Value>,
) -> Result<Value> {
    let kind = plugin["type"].as_str().unwrap_or_default().to_string();
    let binary = find(cni, &kind)?;
    let args: Vec<String> = std::iter::once("IgnoreUnknown=1".to_string())
        .chain(a.args.iter().map(|(k, v)| format!("{k}={v}")))
        .collect();
    let input = stdin_config(net, plugin, a, prev).to_string();
    let spawn_error = |source| CniError::Spawn {
        plugin: kind.clone(),
        source,
    };
    let mut child = Process::new(&binary)
        .env("CNI_COMMAND", command.name())
        .env("CNI_CONTAINERID", &a.container_id)
        .env("CNI_NETNS", &a.netns)
        .env("CNI_IFNAME", &a.ifname)
        .env("CNI_ARGS", args.join(";"))
        .env("CNI_PATH", joined(&cni.bin_dirs))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).map_err(spawn_error)?;
    }
    let out = child.wait_with_output().map_err(spawn_error)?;
    let failed = |message: String| CniError::Plugin {
        plugin: kind.clone(),
        command: command.name(),
        message,
    };
    if !out.status.success() {
        return Err(failed(error_message(&out.stdout, &out.stderr)));
    }
    match command {
        Command::Add => serde_json::from_slice(&out.stdout)
            .map_err(|e| failed(format!("its result is not JSON: {e}"))),
        Command::Del | Command::Check => Ok(Value::Null),
    }
}

/// The CNI error object's message (and details), else what the plugin wrote.
fn error_message(stdout: &[u8], stderr: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(stdout) {
        if let Some(msg) = v["msg"].as_str() {
            return match v["details"].as_str().filter(|d| !d.is_empty()) {
                Some(d) => format!("{msg}: {d}"),
                None => msg.to_string(),
            };
        }
    }
    let text = String::from_utf8_lossy(if stdout.is_empty() { stderr } else { stdout });
    text.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment() -> Attachment {
        Attachment {
            container_id: "abc".into(),
            netns: "/run/x".into(),
            ifname: "eth0".into(),
            args: vec![],
            port_mappings: vec![super::super::PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: String::new(),
            }],
        }
    }

    #[test]
    fn runtime_config_only_for_declared_capabilities() {
        let net = NetworkList {
            name: "pods".into(),
            cni_version: "1.0.0".into(),
            disable_check: false,
            plugins: vec![],
        };
        let portmap = json!({"type": "portmap", "capabilities": {"portMappings": true}});
        let conf = stdin_config(&net, &portmap, &attachment(), Some(&json!({"ips": []})));
        assert_eq!(conf["name"], "pods");
        assert_eq!(conf["cniVersion"], "1.0.0");
        assert_eq!(conf["prevResult"], json!({"ips": []}));
        assert_eq!(
            conf["runtimeConfig"]["portMappings"],
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])
        );
        let bridge = json!({"type": "bridge"});
        let conf = stdin_config(&net, &bridge, &attachment(), None);
        assert!(conf.get("runtimeConfig").is_none());
        assert!(conf.get("prevResult").is_none());
    }

    #[test]
    fn plugin_errors_give_their_message() {
        assert_eq!(
            error_message(br#"{"code": 7, "msg": "bad", "details": "why"}"#, b""),
            "bad: why"
        );
        assert_eq!(error_message(b"", b"crashed\n"), "crashed");
    }

    #[test]
    fn a_missing_plugin_names_the_dirs() {
        let cni = Cni::new("/nonexistent".as_ref(), &["/nonexistent/bin".into()]);
        let err = find(&cni, "bridge").expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/bin"), "{err}");
    }
}
