//! `docker exec`'s bodies: the request of `POST /containers/{id}/exec` (moby's ExecConfig)
//! and its response, the request of `POST /exec/{id}/start` (ExecStartCheck), and
//! `GET /exec/{id}/json` (moby's backend.ExecInspect).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::container::decode::{object, typed, DecodeError};

/// moby's ExecConfig (`POST /containers/{id}/exec`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    /// Height and width of the terminal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u64; 2]>,
    pub attach_stdin: bool,
    pub attach_stderr: bool,
    pub attach_stdout: bool,
    pub detach: bool,
    pub detach_keys: String,
    pub env: Vec<String>,
    pub working_dir: String,
    /// A list: moby's ExecConfig.Cmd is a []string, not a StrSlice.
    pub cmd: Vec<String>,
}

impl ExecConfig {
    /// The request body, typed (berth honours every member of moby's ExecConfig; other
    /// keys are ignored, as dockerd's decoder ignores them).
    pub fn decode(body: &Value) -> Result<ExecConfig, DecodeError> {
        object(body, "body")?;
        typed("exec config", body)
    }
}

/// moby's ExecStartCheck (`POST /exec/{id}/start`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartConfig {
    pub detach: bool,
    /// How the stream is framed: raw with a terminal, multiplexed without (whatever
    /// terminal the process has).
    pub tty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u64; 2]>,
}

impl ExecStartConfig {
    /// The request body, typed; a null body is the zero value, as Go decodes it.
    pub fn decode(body: &Value) -> Result<ExecStartConfig, DecodeError> {
        if body.is_null() {
            return Ok(ExecStartConfig::default());
        }
        object(body, "body")?;
        typed("exec start config", body)
    }
}

/// moby's IDResponse: the exec create's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdResponse {
    #[serde(rename = "Id")]
    pub id: String,
}

/// moby's backend.ExecInspect (`GET /exec/{id}/json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    /// Null until the process has ended.
    pub exit_code: Option<i32>,
    pub process_config: ExecProcessConfig,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    pub can_remove: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// As the exec was created with them (dockerd's is the parsed key sequence).
    pub detach_keys: String,
    pub pid: i32,
}

/// moby's backend.ExecProcessConfig (lower-case members, as dockerd's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecProcessConfig {
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exec_configs_are_typed() {
        let b =
            ExecConfig::decode(&json!({"Cmd": ["sh"], "Env": null, "Tty": true})).expect("exec");
        assert_eq!(b.cmd, ["sh"]);
        assert!(b.tty);
        assert_eq!(
            ExecConfig::decode(&json!({"Cmd": "sh"}))
                .map_err(|e| e.to_string())
                .map(drop),
            Err("invalid exec config.Cmd: invalid type: string \"sh\", expected a sequence".into())
        );
        assert!(ExecConfig::decode(&json!({"Cmd": ["sh"], "Env": "A=1"}))
            .is_err_and(|e| e.to_string().contains("exec config.Env")));
        assert!(ExecConfig::decode(&json!("x"))
            .is_err_and(|e| e.to_string() == "the body must be a JSON object"));
    }

    #[test]
    fn start_configs_are_typed() {
        let s = ExecStartConfig::decode(
            &json!({"Detach": false, "Tty": true, "ConsoleSize": [24, 80]}),
        )
        .expect("start");
        assert!(s.tty && !s.detach);
        assert_eq!(s.console_size, Some([24, 80]));
        assert!(!ExecStartConfig::decode(&Value::Null).expect("null").detach);
        assert!(ExecStartConfig::decode(&json!({"Detach": "yes"}))
            .is_err_and(|e| e.to_string().contains("exec start config.Detach")));
    }

    /// dockerd's `GET /exec/{id}/json` (moby's swagger example for ExecInspectResponse and
    /// backend.ExecInspect's tags): ExitCode null while running, ProcessConfig's members
    /// lower-case, `user` left out when empty.
    #[test]
    fn inspect_has_dockerds_shape() {
        let running = ExecInspect {
            id: "b53ee82b53a40c7dca428523e34f741f3abc51d9f297a14ff874bf761b995126".into(),
            running: true,
            exit_code: None,
            process_config: ExecProcessConfig {
                tty: true,
                entrypoint: "sh".into(),
                arguments: vec![],
                privileged: Some(false),
                user: String::new(),
            },
            open_stdin: true,
            open_stderr: true,
            open_stdout: true,
            can_remove: false,
            container_id: "b53ee82b53a4".into(),
            detach_keys: String::new(),
            pid: 42000,
        };
        let v = serde_json::to_value(&running).expect("json");
        assert_eq!(
            v,
            json!({
                "ID": "b53ee82b53a40c7dca428523e34f741f3abc51d9f297a14ff874bf761b995126",
                "Running": true, "ExitCode": null,
                "ProcessConfig": {"tty": true, "entrypoint": "sh", "arguments": [], "privileged": false},
                "OpenStdin": true, "OpenStderr": true, "OpenStdout": true, "CanRemove": false,
                "ContainerID": "b53ee82b53a4", "DetachKeys": "", "Pid": 42000
            })
        );
        let created = serde_json::to_value(IdResponse { id: "abc".into() }).expect("json");
        assert_eq!(created, json!({"Id": "abc"}));
    }
}
