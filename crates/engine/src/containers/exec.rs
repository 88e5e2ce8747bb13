//! `docker exec`: exec instances (created, then started once) kept in memory, as Docker
//! keeps them; the process runs through the container's shim.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_shim_protocol::{Request, EXIT};
use serde_json::Value;

use super::request::ExecConfig;
use super::stream::{read_frame, request, ShimStream};
use super::Status;
use crate::error::{Error, Result};
use crate::Engine;

#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    /// The runtime-spec process to run.
    pub process: Value,
    pub tty: bool,
    pub open_stdin: bool,
    pub open_stdout: bool,
    pub open_stderr: bool,
    pub privileged: bool,
    pub user: String,
    pub detach_keys: Option<String>,
    pub started: bool,
    pub running: bool,
    pub pid: i32,
    pub exit_code: Option<i32>,
}

pub struct Execs {
    map: Mutex<HashMap<String, ExecRecord>>,
    /// For the events of their containers (exec_die).
    containers: std::sync::Arc<super::Containers>,
}

impl Execs {
    pub fn new(containers: std::sync::Arc<super::Containers>) -> Execs {
        Execs {
            map: Mutex::default(),
            containers,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecRecord>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Result<ExecRecord> {
        self.lock()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
    }

    /// The exec ids of a container (inspect's ExecIDs).
    pub fn of_container(&self, container: &str) -> Vec<String> {
        self.lock()
            .values()
            .filter(|e| e.container_id == container)
            .map(|e| e.id.clone())
            .collect()
    }

    pub fn forget_container(&self, container: &str) {
        self.lock().retain(|_, e| e.container_id != container);
    }

    /// The process has ended with `code`: recorded, and an exec_die event.
    pub fn exited(&self, id: &str, code: i32) {
        let container = self.lock().get_mut(id).map(|e| {
            e.running = false;
            e.exit_code = Some(code);
            e.container_id.clone()
        });
        if let Some(container) = container {
            self.containers.event(
                &container,
                "exec_die",
                &[("execID", id.to_string()), ("exitCode", code.to_string())],
            );
        }
    }
}

/// The exec's command line (for its events).
fn command_line(exec: &ExecRecord) -> String {
    super::string_list(&exec.process["args"])
        .unwrap_or_default()
        .join(" ")
}

/// Drain a shim's exec stream until its exit frame; the code (137 if the shim went away).
pub fn exit_code_of(stream: &mut ShimStream) -> i32 {
    while let Ok(Some((kind, payload))) = read_frame(stream) {
        if kind == EXIT {
            return payload
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map_or(255, i32::from_be_bytes);
        }
    }
    137
}

impl Engine {
    /// `POST /containers/{id}/exec`: the process is built from the container's own (its
    /// capabilities, seccomp, environment) with the request on top.
    pub fn create_exec(&self, name: &str, req: ExecConfig) -> Result<String> {
        super::create::check_env(&req.env)?;
        let record = self.containers.resolve(name)?;
        if record.state.status != Status::Running {
            return Err(super::manage::not_running(&record));
        }
        if record.state.paused {
            return Err(Error::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                record.id
            )));
        }
        let cmd = req.cmd;
        if cmd.is_empty() {
            return Err(Error::InvalidArgument("No exec command specified".into()));
        }
        let dir = self.containers.dir(&record.id);
        let config: Value = std::fs::read(self.containers.bundle(&record.id).join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| Error::Conflict(format!("Container {} is not running", record.id)))?;
        let mut process = config["process"].clone();
        process["args"] = Value::from(cmd);
        let tty = req.tty;
        process["terminal"] = Value::Bool(tty);
        match req.console_size {
            Some([height, width]) if tty && height > 0 && width > 0 => {
                let size = [("height", height), ("width", width)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Value::from(v)))
                    .collect();
                process["consoleSize"] = Value::Object(size);
            }
            _ => {
                if let Some(p) = process.as_object_mut() {
                    p.remove("consoleSize");
                }
            }
        }
        let env = super::string_list(&process["env"]).unwrap_or_default();
        let mut env = super::create::merge_env(env, req.env);
        if tty {
            super::spec::with_term(&mut env);
        }
        process["env"] = Value::from(env);
        let cwd = req.working_dir.as_str();
        if !cwd.is_empty() {
            if !cwd.starts_with('/') {
                return Err(Error::InvalidArgument(format!(
                    "the working directory {cwd:?} is not an absolute path"
                )));
            }
            process["cwd"] = Value::from(cwd);
        }
        let user = req.user;
        if !user.is_empty() {
            // With the container's --group-add, as dockerd's getUser.
            let resolved =
                super::user::resolve_user(&dir.join("rootfs"), &user, &record.host.group_add)?;
            process["user"] = resolved.to_oci();
        }
        let privileged = req.privileged;
        if privileged {
            let all = Value::from(super::host::all_caps());
            let caps = ["bounding", "effective", "permitted"]
                .into_iter()
                .map(|set| (set.to_string(), all.clone()))
                .collect();
            process["capabilities"] = Value::Object(caps);
        }
        let id = super::random_id()?;
        let exec = ExecRecord {
            id: id.clone(),
            container_id: record.id.clone(),
            process,
            tty,
            open_stdin: req.attach_stdin,
            open_stdout: req.attach_stdout,
            open_stderr: req.attach_stderr,
            privileged,
            user,
            detach_keys: Some(req.detach_keys).filter(|k| !k.is_empty()),
            started: false,
            running: false,
            pid: 0,
            exit_code: None,
        };
        let command = command_line(&exec);
        self.execs.lock().insert(id.clone(), exec);
        self.containers.event(
            &record.id,
            &format!("exec_create: {command}"),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// Whether exec `id` can start: it exists, has not run, and its container runs.
    pub fn exec_startable(&self, id: &str) -> Result<ExecRecord> {
        let exec = self.execs.get(id)?;
        if exec.started {
            return Err(Error::Conflict(format!(
                "Error: Exec command {id} has already run"
            )));
        }
        let record = self.containers.resolve(&exec.container_id)?;
        if record.state.status != Status::Running {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        Ok(exec)
    }

    /// `POST /exec/{id}/start`: the process runs; its stream (None when detached: its exit
    /// is then collected here).
    pub fn start_exec(&self, id: &str, detach: bool) -> Result<(ExecRecord, Option<ShimStream>)> {
        let exec = {
            let mut map = self.execs.lock();
            let e = map
                .get_mut(id)
                .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))?;
            if e.started {
                return Err(Error::Conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            e.started = true;
            e.clone()
        };
        let record = self.containers.resolve(&exec.container_id)?;
        if record.state.status != Status::Running {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        let request_body = Request::Exec {
            id: id.to_string(),
            process: exec.process.clone(),
            stdin: exec.open_stdin && !detach,
        };
        let (mut stream, pid) = request(&self.containers.bundle(&record.id), &request_body)?;
        let pid: i32 = pid.parse().unwrap_or(0);
        {
            let mut map = self.execs.lock();
            if let Some(e) = map.get_mut(id) {
                e.running = true;
                e.pid = pid;
            }
        }
        let exec = self.execs.get(id)?;
        let command = command_line(&exec);
        self.containers.event(
            &record.id,
            &format!("exec_start: {command}"),
            &[("execID", id.to_string())],
        );
        if detach {
            let engine_execs = self.execs.clone();
            let id = id.to_string();
            std::thread::spawn(move || {
                let code = exit_code_of(&mut stream);
                engine_execs.exited(&id, code);
            });
            return Ok((exec, None));
        }
        Ok((exec, Some(stream)))
    }

    /// `POST /exec/{id}/resize`.
    pub fn resize_exec(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let exec = self.execs.get(id)?;
        if !exec.running {
            return Err(Error::Conflict(format!("Exec {id} is not running")));
        }
        let req = Request::Resize {
            exec: Some(id.to_string()),
            height,
            width,
        };
        request(&self.containers.bundle(&exec.container_id), &req).map(drop)
    }
}
