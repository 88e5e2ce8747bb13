//! `POST /containers/create`: the typed request checked as dockerd checks it, merged with
//! the image's config as moby merges them, and recorded. Nothing is created (no record, no
//! bind source) unless the whole request is valid.

use berth_image::{DockerOCIImageConfig as ImageConfig, Platform};
use serde_json::Value;

use super::health::HealthRules;
use super::request::{CreateBody, HostConfig};
use super::{Config, ContainerRecord, State, Status};
use crate::error::{Error, Result};
use crate::Engine;

/// Env lists merged by key, later entries winning; an entry without `=` unsets its key (as
/// moby's ReplaceOrAppendEnvValues).
pub(crate) fn merge_env(base: Vec<String>, over: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = base;
    for e in over {
        let (key, value) = match e.split_once('=') {
            Some((key, _)) => (key.to_string(), Some(e.clone())),
            None => (e.clone(), None),
        };
        out.retain(|x| x.split('=').next() != Some(key.as_str()));
        out.extend(value);
    }
    out
}

/// Environment entries must name a variable (moby's ValidateEnv).
pub(crate) fn check_env(env: &[String]) -> Result<()> {
    match env
        .iter()
        .find(|e| e.split('=').next().is_none_or(str::is_empty))
    {
        Some(bad) => Err(Error::InvalidArgument(format!(
            "invalid environment variable: {bad}"
        ))),
        None => Ok(()),
    }
}

/// A stop signal by name or number, as `kill` takes it (moby's ParseSignal).
fn check_signal(signal: &str) -> Result<()> {
    let bad = || Error::InvalidArgument(format!("Invalid signal: {signal}"));
    if let Ok(n) = signal.parse::<i32>() {
        return (1..=libc::SIGRTMAX())
            .contains(&n)
            .then_some(())
            .ok_or_else(bad);
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = |base: i32, rest: &str| {
        let offset = match rest {
            "" => Some(0),
            r => r
                .strip_prefix(['+', '-'])
                .and_then(|n| n.parse::<i32>().ok())
                .map(|n| if r.starts_with('-') { -n } else { n }),
        };
        offset.is_some_and(|o| (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&(base + o)))
    };
    let valid = if let Some(rest) = name.strip_prefix("RTMIN") {
        realtime(libc::SIGRTMIN(), rest)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        realtime(libc::SIGRTMAX(), rest)
    } else {
        format!("SIG{name}")
            .parse::<nix::sys::signal::Signal>()
            .is_ok()
    };
    valid.then_some(()).ok_or_else(bad)
}

/// HostConfig.LogConfig: the json-file driver with its rotation options, or none (whose
/// options dockerd ignores). `local` is refused: its format (protobuf frames, rotated files
/// compressed) is dockerd's own, read only by dockerd, and json-file with max-size and
/// max-file gives the same bounded disk use.
fn log_config(
    host: &HostConfig,
    base: super::LogLimits,
) -> Result<(super::host::LogDriver, super::LogLimits)> {
    let driver = match host.log_config.driver.as_str() {
        "" | "json-file" => super::host::LogDriver::JsonFile,
        "none" => return Ok((super::host::LogDriver::None, super::LogLimits::default())),
        "local" => {
            return Err(Error::InvalidArgument(
                "logging driver \"local\" is not supported by berth: use json-file (--log-opt max-size=, max-file= bound its size) or none".into(),
            ))
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "logger: no log driver named '{other}' is registered"
            )))
        }
    };
    let opts = host
        .log_config
        .config
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    Ok((driver, super::LogLimits::parse(&opts, base)?))
}

/// A MAC address asks for an interface of the container's own, which the none and host
/// networks do not give (dockerd's refusal for a network that cannot take one).
fn check_mac_address(req: &CreateBody) -> Result<()> {
    let asked = !req.mac_address.is_empty()
        || req
            .networking_config
            .endpoints_config
            .values()
            .any(|e| !e.mac_address.is_empty());
    if asked {
        return Err(Error::InvalidArgument(
            "conflicting options: mac-address and the network mode".into(),
        ));
    }
    Ok(())
}

/// Entrypoint and Cmd as moby merges them with the image's: an Entrypoint given (even an
/// empty one, the CLI's `--entrypoint ""`) replaces the image's and drops its Cmd; a Cmd
/// given replaces the image's.
fn command(body: &CreateBody, image: &ImageConfig) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let user_cmd = body.cmd.clone().map(|c| c.0).filter(|c| !c.is_empty());
    match body.entrypoint.clone().map(|e| e.0) {
        Some(e) if !e.is_empty() => (Some(e), user_cmd),
        given => (
            given.or_else(|| image.oci.entrypoint().clone()),
            user_cmd.or_else(|| image.oci.cmd().clone()),
        ),
    }
}

impl Engine {
    /// POST /containers/create, without its warnings (see [`Engine::create`]).
    pub fn create_container(
        &self,
        req: &CreateBody,
        name: Option<&str>,
        platform: Option<&Platform>,
    ) -> Result<ContainerRecord> {
        self.create(req, name, platform).map(|(record, _)| record)
    }

    /// POST /containers/create: the decoded request (Docker's Config with HostConfig
    /// inside); the record and dockerd's warnings (options this host discards).
    /// `platform`: the image must be built for it (`docker run --platform`); a mismatch is
    /// moby's not-found, on which the docker CLI pulls that platform and tries again.
    pub fn create(
        &self,
        req: &CreateBody,
        name: Option<&str>,
        platform: Option<&Platform>,
    ) -> Result<(ContainerRecord, Vec<String>)> {
        self.create_with(req, name, platform, None)
    }

    /// [`Engine::create`], for a pod's container when `pod` is given.
    pub(crate) fn create_with(
        &self,
        req: &CreateBody,
        name: Option<&str>,
        platform: Option<&Platform>,
        pod: Option<super::pod::PodLink>,
    ) -> Result<(ContainerRecord, Vec<String>)> {
        let host = &req.host_config;
        check_env(req.env.as_deref().unwrap_or_default())?;
        if host.annotations.contains_key("") {
            return Err(Error::InvalidArgument(
                "invalid Annotations: the empty string is not permitted as an annotation key"
                    .into(),
            ));
        }
        if !req.stop_signal.is_empty() {
            check_signal(&req.stop_signal)?;
        }
        let healthcheck = req.healthcheck.clone();
        if let Some(check) = &healthcheck {
            check.validate()?;
        }
        // A container to join that does not exist is a bad parameter (a 400), as dockerd's.
        let resolve = |name: &str| match self.containers.resolve(name) {
            Ok(c) => Ok(c.id),
            Err(Error::NotFound(m)) => Err(Error::InvalidArgument(m)),
            Err(e) => Err(e),
        };
        let cx = super::host::Context {
            hostname: &req.hostname,
            // Every mode but the host's gives the container a network namespace.
            own_network: host.network_mode != "host"
                && !host.network_mode.starts_with("container:"),
            default_caps: &super::spec::DEFAULT_CAPS,
            sys: super::host::sysinfo::SysInfo::host(),
            resolve: &resolve,
            default_cgroup_parent: &self.default_cgroup_parent,
        };
        let (mut host_options, warnings) = super::host::parse(host, &cx)?;
        let (network_mode, network_warnings, network_id) = self.network_mode(req)?;
        let mut warnings = warnings;
        warnings.extend(network_warnings);
        if matches!(network_mode.as_str(), "none" | "host")
            || network_mode.starts_with("container:")
        {
            check_mac_address(req)?;
        }
        let restart = super::restart::RestartPolicy::parse(&host.restart_policy)?;
        if !restart.is_none() && host.auto_remove {
            return Err(Error::InvalidArgument(
                "Conflicting options: --restart and --rm".into(),
            ));
        }
        if host_options.init && self.paths.as_ref().is_none_or(|p| p.init.is_none()) {
            return Err(Error::InvalidArgument(
                "--init: berthd found no init binary (docker-init or tini-static; install tini, or set init-path)".into(),
            ));
        }
        let caps: Vec<&str> = host_options.caps.iter().map(String::as_str).collect();
        let (mut seccomp, no_new_privileges) = self.security(host, &caps)?;
        if host_options.privileged {
            // As Docker: a privileged container is not filtered.
            seccomp = None;
        }
        let runtime = self.requested_runtime(host)?;
        let (log_driver, log) = log_config(host, self.default_log)?;
        host_options.log_driver = log_driver;
        let console_size = Some(host.console_size)
            .filter(|[h, w]| *h > 0 && *w > 0)
            .map(|[h, w]| (h.min(u16::MAX.into()) as u16, w.min(u16::MAX.into()) as u16));
        if req.image.is_empty() {
            return Err(Error::InvalidArgument("no image given".into()));
        }
        let image = self.images.resolve(&req.image)?;
        let image_config = self.images.config(&image.record)?;
        if let Some(wanted) = platform {
            let actual = image_config.platform();
            if !wanted.served_by(&actual) {
                return Err(Error::NotFound(format!("image with reference {} was found but does not match the specified platform: wanted {wanted}, actual: {actual}", req.image)));
            }
        }
        let ic = &image_config.exec_config();
        let destinations: Vec<String> = host_options
            .mounts
            .iter()
            .filter_map(|m| m["destination"].as_str().map(String::from))
            .collect();
        let volume_plan = self.plan_volumes(req, ic, &destinations)?;
        host_options.mounts.extend(volume_plan.oci);
        let mut net = super::net::options(req, ic)?;
        let find = |name: &str| self.containers.net.get().and_then(|n| n.known(name));
        super::net::endpoint_options(req, &network_mode, &network_id, &mut net, &find)?;
        net.network_id = network_id;
        let (entrypoint, cmd) = command(req, ic);
        let mut labels = image_config.labels();
        labels.extend(req.labels.clone());
        let or_image = |given: &str, image: &Option<String>| {
            Some(given)
                .filter(|s| !s.is_empty())
                .or_else(|| image.as_deref().filter(|s| !s.is_empty()))
                .map(String::from)
        };
        // A container on the host's network has the host's name, as in Docker.
        let hostname = match req.hostname.as_str() {
            "" if network_mode == "host" => nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned()),
            "" => None,
            given => Some(given.to_string()),
        };
        let config = Config {
            hostname,
            user: or_image(&req.user, ic.oci.user()),
            env: Some(merge_env(
                ic.oci.env().clone().unwrap_or_default(),
                req.env.clone().unwrap_or_default(),
            )),
            cmd,
            entrypoint,
            working_dir: or_image(&req.working_dir, ic.oci.working_dir()),
            labels: Some(labels),
            stop_signal: or_image(&req.stop_signal, ic.oci.stop_signal()),
            stop_timeout: req.stop_timeout,
            image: req.image.clone(),
            tty: req.tty,
            open_stdin: req.open_stdin,
            stdin_once: req.stdin_once,
            healthcheck: super::health::merge(healthcheck, ic.healthcheck.clone()),
        };
        let mut record = ContainerRecord {
            id: String::new(),
            name: String::new(),
            created: super::lifecycle::now(),
            image: image.record.id.to_string(),
            config,
            network_mode,
            host_config: super::spec::with_default_paths(req.host_config.clone()),
            runtime,
            seccomp,
            no_new_privileges,
            host: host_options,
            restart,
            restart_count: 0,
            manually_stopped: false,
            console_size,
            log,
            state: State {
                status: Status::Created,
                paused: false,
                pid: 0,
                exit_code: 0,
                oom_killed: false,
                error: String::new(),
                restarting: false,
                started_at: None,
                finished_at: None,
                health: None,
            },
            net,
            endpoints: Vec::new(),
            legacy_endpoint: None,
            pod,
        };
        super::spec::args(&record)?;
        super::host::create_bind_sources(&record.host.mounts)?;
        // Volumes made and the record saved under one hold, so that no removal of a volume
        // falls between them; volumes made for a create that fails go again.
        let _held = self.volumes().changes();
        let (volumes, made) = self.make_volumes(&volume_plan.volumes)?;
        record.host.volumes = volumes;
        let record = self.containers.insert(record, name).inspect_err(|_| {
            self.unmake_volumes(&made);
        })?;
        self.containers.event(&record.id, "create", &[]);
        Ok((record, warnings))
    }

    /// HostConfig.NetworkMode: none, host, or the default bridge (`default`, `bridge`, or
    /// none given); dockerd's warnings for options the mode discards.
    fn network_mode(&self, req: &CreateBody) -> Result<(String, Vec<String>, String)> {
        let host = &req.host_config;
        let publishes = host.publish_all_ports || !host.port_bindings.is_empty();
        match host.network_mode.as_str() {
            "host" if publishes => Ok((
                "host".into(),
                vec!["Published ports are discarded when using host network mode".into()],
                String::new(),
            )),
            m @ ("none" | "host") => Ok((m.to_string(), Vec::new(), String::new())),
            "" | "default" | "bridge" => match self.containers.net.get() {
                Some(n) if n.default.is_some() => Ok(("bridge".into(), Vec::new(), String::new())),
                // A 400, not moby's 404: the docker CLI answers a 404 by pulling the image.
                _ => Err(Error::InvalidArgument("network bridge not found".into())),
            },
            other if other.starts_with("container:") => {
                super::net::check_container_mode(req)?;
                let name = &other["container:".len()..];
                let x = self.containers.resolve(name).map_err(|e| match e {
                    Error::NotFound(m) => Error::InvalidArgument(m),
                    other => other,
                })?;
                Ok((format!("container:{}", x.id), Vec::new(), String::new()))
            }
            other => match self.containers.net.get().and_then(|n| n.find(other)) {
                Some(network) => Ok((network.name, Vec::new(), network.id)),
                None => Err(Error::InvalidArgument(format!("network {other} not found"))),
            },
        }
    }

    /// HostConfig.Runtime (`--runtime`): a runtime berthd knows, recorded by name.
    fn requested_runtime(&self, host: &HostConfig) -> Result<String> {
        let Some(paths) = &self.paths else {
            // Without helpers nothing starts anyway; start says why.
            return Ok(host.runtime.clone());
        };
        paths.binary(&host.runtime)?;
        Ok(paths.name(&host.runtime).to_string())
    }

    /// `--security-opt`: seccomp=unconfined|<profile JSON>, no-new-privileges[=true|false].
    /// Without a seccomp option, the daemon's default profile applies.
    fn security(&self, host: &HostConfig, caps: &[&str]) -> Result<(Option<Value>, bool)> {
        let mut seccomp = match &self.default_seccomp {
            Some(profile) => Some(super::seccomp::to_oci(profile, caps)?),
            None => None,
        };
        let mut nnp = false;
        for opt in &host.security_opt {
            let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt, ""));
            match (key, value) {
                ("seccomp", "unconfined") => seccomp = None,
                ("seccomp", profile) if !profile.is_empty() => {
                    let v: Value = serde_json::from_str(profile).map_err(|e| {
                        Error::InvalidArgument(format!(
                            "security-opt seccomp: invalid profile: {e}"
                        ))
                    })?;
                    seccomp = Some(super::seccomp::to_oci(&v, caps)?);
                }
                ("no-new-privileges", "" | "true") => nnp = true,
                ("no-new-privileges", "false") => nnp = false,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "security-opt {opt:?} is not supported by berth yet"
                    )))
                }
            }
        }
        Ok((seccomp, nnp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_merges_and_unsets() {
        let merged = merge_env(
            vec!["PATH=/bin".into(), "A=1".into(), "B=2".into()],
            vec!["A=3".into(), "B".into(), "C=".into(), "NOPE".into()],
        );
        assert_eq!(merged, ["PATH=/bin", "A=3", "C="]);
        assert!(check_env(&["=x".into()]).is_err());
        assert!(check_env(&["".into()]).is_err());
        assert!(check_env(&["A".into(), "B=".into()]).is_ok());
    }

    #[test]
    fn signals() {
        for good in [
            "TERM",
            "SIGKILL",
            "sigusr1",
            "9",
            "RTMIN+3",
            "SIGRTMAX-2",
            "RTMIN",
        ] {
            assert!(check_signal(good).is_ok(), "{good}");
        }
        for bad in ["BOGUS", "0", "-1", "99", "SIGRTMIN+99", "RTMIN+x", ""] {
            assert!(check_signal(bad).is_err(), "{bad}");
        }
    }

    fn body(v: Value) -> CreateBody {
        berth_api_types::container::decode::create_request(&v).expect("body")
    }

    #[test]
    fn entrypoint_and_cmd_merge_as_moby() {
        let image: ImageConfig =
            serde_json::from_value(json!({"Entrypoint": ["/init"], "Cmd": ["serve"]}))
                .expect("image config");
        let cases = [
            (json!({}), (Some(vec!["/init"]), Some(vec!["serve"]))),
            (
                json!({"Cmd": ["x"]}),
                (Some(vec!["/init"]), Some(vec!["x"])),
            ),
            (
                json!({"Cmd": "echo hi"}),
                (Some(vec!["/init"]), Some(vec!["echo hi"])),
            ),
            (json!({"Entrypoint": ["sh"]}), (Some(vec!["sh"]), None)),
            (
                json!({"Entrypoint": [], "Cmd": ["ls"]}),
                (Some(vec![]), Some(vec!["ls"])),
            ),
            (
                json!({"Entrypoint": []}),
                (Some(vec![]), Some(vec!["serve"])),
            ),
        ];
        for (req, (entrypoint, cmd)) in cases {
            let strings =
                |v: Option<Vec<&str>>| v.map(|v| v.iter().map(|s| s.to_string()).collect());
            assert_eq!(
                command(&body(req.clone()), &image),
                (strings(entrypoint), strings(cmd)),
                "{req}"
            );
        }
    }
}
