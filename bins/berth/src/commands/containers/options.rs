//! `create` and `run` flags, turned into the Engine API's create body (Config with
//! HostConfig inside) as the docker CLI sends it. Values are checked here where docker's
//! CLI checks them (sizes, CPUs, ulimits); the daemon checks the rest.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args};
use serde_json::{json, Map, Value};

/// `--pull`: docker's image pull policy for run and create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull when the image is not present.
    Missing,
    /// Pull before every create.
    Always,
    /// Never pull: a missing image is an error.
    Never,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// When to pull the image first.
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// Run the image built for this platform (os/arch[/variant]), pulling it if needed.
    #[arg(long)]
    pub platform: Option<String>,
    /// Keep standard input open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// A name for the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from here).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long)]
    pub env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the image's entrypoint.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Set metadata (KEY=VALUE).
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Restart policy: no, always, unless-stopped, on-failure[:max-retries].
    #[arg(long)]
    pub restart: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Mount a tmpfs (PATH[:OPTIONS]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Limit the number of processes (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options (NAME=SOFT[:HARD]).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options (seccomp=FILE|unconfined, no-new-privileges).
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds to wait for the container to stop before killing it.
    #[arg(long, allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Network mode: none or host (bridge networking comes later).
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// A volume or a bind mount (NAME:PATH, /HOST:PATH or PATH, then [:ro|rw|nocopy|z|Z]).
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// A mount (type=bind|volume|tmpfs,source=...,target=...[,readonly,...]).
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount the volumes of another container (CONTAINER[:ro|rw]).
    #[arg(long)]
    pub volumes_from: Vec<String>,
    /// The OCI runtime for this container.
    #[arg(long)]
    pub runtime: Option<String>,
    /// Logging driver (json-file, none).
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Log driver options (max-size=10m, max-file=3).
    #[arg(long)]
    pub log_opt: Vec<String>,
    #[command(flatten)]
    pub host_flags: super::host_flags::HostFlags,
    /// Command to run to check health (through /bin/sh -c).
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h), 30s by default.
    #[arg(long, allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h), 30s by default.
    #[arg(long, allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long, allow_hyphen_values = true)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before failures count (ms|s|m|h).
    #[arg(long, allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h).
    #[arg(long, allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// The image to run, then the command and its arguments (everything after the image
    /// belongs to the command).
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        trailing_var_arg = true
    )]
    pub image_and_command: Vec<String>,
}

/// docker's RAMInBytes: a number with an optional binary unit (b, k, m, g, t, p; "kb" too).
pub fn parse_bytes(s: &str) -> Result<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let value: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size: '{s}'"))?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => bail!("invalid size: '{s}'"),
    };
    Ok((value * (1u64 << shift) as f64) as i64)
}

/// `--cpus 1.5` as NanoCpus.
pub fn parse_cpus(s: &str) -> Result<i64> {
    let cpus: f64 = s
        .parse()
        .with_context(|| format!("invalid argument \"{s}\" for \"--cpus\" flag"))?;
    if !cpus.is_finite() || cpus < 0.0 {
        bail!("invalid argument \"{s}\" for \"--cpus\" flag: value must be positive");
    }
    Ok((cpus * 1e9).round() as i64)
}

/// `--ulimit nofile=1024:2048` as the API's {Name, Soft, Hard}.
fn parse_ulimit(s: &str) -> Result<Value> {
    let bad = || anyhow::anyhow!("invalid ulimit argument: {s}");
    let (name, limits) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    let hard: i64 = hard.parse().map_err(|_| bad())?;
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

/// `--restart on-failure:3` as the API's {Name, MaximumRetryCount}.
pub fn parse_restart(s: &str) -> Result<Value> {
    let (name, count) = match s.split_once(':') {
        Some((name, count)) => {
            let count: i64 = count
                .parse()
                .with_context(|| format!("invalid restart policy format: {s}"))?;
            (name, count)
        }
        None => (s, 0),
    };
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

/// A `--health-*` duration: not negative (the docker CLI's check).
fn health_duration(flag: &str, value: Option<&String>) -> Result<i64> {
    let Some(v) = value else { return Ok(0) };
    let nanos = berth_engine::containers::health::parse_go_duration(v)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("invalid argument \"{v}\" for \"--{flag}\" flag"))?;
    if nanos < 0 {
        bail!("--{flag} cannot be negative");
    }
    Ok(nanos)
}

/// `-e KEY=VALUE`, or `-e KEY` taken from this environment (dropped when unset, as docker).
fn env_entry(entry: &str) -> Option<String> {
    if entry.contains('=') {
        return Some(entry.to_string());
    }
    std::env::var(entry).ok().map(|v| format!("{entry}={v}"))
}

/// The lines of an --env-file: comments and blank lines skipped.
fn env_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(env_entry)
        .collect())
}

/// `--security-opt seccomp=FILE`: docker's CLI sends the profile itself.
fn security_opt(opt: &str) -> Result<String> {
    match opt.split_once(['=', ':']) {
        Some(("seccomp", value)) if value != "unconfined" => {
            let profile = std::fs::read_to_string(value)
                .with_context(|| format!("opening seccomp profile ({value}) failed"))?;
            Ok(format!("seccomp={profile}"))
        }
        _ => Ok(opt.to_string()),
    }
}

fn key_values(items: &[String]) -> Map<String, Value> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (l.to_string(), json!("")),
        })
        .collect()
}

impl CreateArgs {
    /// The body of POST /containers/create.
    pub fn body(&self) -> Result<Value> {
        let mut env = Vec::new();
        for file in &self.env_file {
            env.extend(env_file(file)?);
        }
        env.extend(self.env.iter().filter_map(|e| env_entry(e)));
        let attach_stdin = self.interactive;
        let (image, command) = self
            .image_and_command
            .split_first()
            .context("no image given")?;
        let mut config = json!({
            "Image": image,
            "Tty": self.tty,
            "OpenStdin": self.interactive,
            "StdinOnce": self.interactive,
            "AttachStdin": attach_stdin,
            "AttachStdout": true,
            "AttachStderr": true,
            "Env": env,
            "Labels": key_values(&self.label),
        });
        if !command.is_empty() {
            config["Cmd"] = json!(command);
        }
        let fields = [
            ("Entrypoint", self.entrypoint.as_ref().map(|e| json!([e]))),
            ("WorkingDir", self.workdir.as_ref().map(|w| json!(w))),
            ("User", self.user.as_ref().map(|u| json!(u))),
            ("Hostname", self.hostname.as_ref().map(|h| json!(h))),
            ("StopSignal", self.stop_signal.as_ref().map(|s| json!(s))),
            ("StopTimeout", self.stop_timeout.map(|t| json!(t))),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                config[key] = v;
            }
        }
        if let Some(check) = self.healthcheck()? {
            config["Healthcheck"] = check;
        }
        config["HostConfig"] = self.host_config()?;
        let mut networking = json!({"EndpointsConfig": {}});
        let network = self.network.as_deref().unwrap_or("default");
        self.host_flags
            .apply(&mut config["HostConfig"], &mut networking, network)?;
        if networking["EndpointsConfig"]
            .as_object()
            .is_some_and(|e| !e.is_empty())
        {
            config["NetworkingConfig"] = networking;
        }
        Ok(config)
    }

    /// `--health-*` and `--no-healthcheck` as Config.Healthcheck, as the docker CLI builds it.
    fn healthcheck(&self) -> Result<Option<Value>> {
        let interval = health_duration("health-interval", self.health_interval.as_ref())?;
        let timeout = health_duration("health-timeout", self.health_timeout.as_ref())?;
        let start_period =
            health_duration("health-start-period", self.health_start_period.as_ref())?;
        let start_interval =
            health_duration("health-start-interval", self.health_start_interval.as_ref())?;
        let retries = self.health_retries.unwrap_or(0);
        let cmd = self.health_cmd.as_deref().unwrap_or_default();
        let any = !cmd.is_empty()
            || interval != 0
            || timeout != 0
            || start_period != 0
            || start_interval != 0
            || retries != 0;
        if self.no_healthcheck {
            if any {
                bail!("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(json!({"Test": ["NONE"]})));
        }
        if !any {
            return Ok(None);
        }
        if retries < 0 {
            bail!("--health-retries cannot be negative");
        }
        let test: Vec<&str> = if cmd.is_empty() {
            Vec::new()
        } else {
            vec!["CMD-SHELL", cmd]
        };
        Ok(Some(json!({
            "Test": test,
            "Interval": interval,
            "Timeout": timeout,
            "StartPeriod": start_period,
            "StartInterval": start_interval,
            "Retries": retries,
        })))
    }

    fn host_config(&self) -> Result<Value> {
        let mut host = json!({
            "NetworkMode": self.network.clone().unwrap_or_else(|| "default".into()),
            "AutoRemove": self.rm,
            "Privileged": self.privileged,
            "ReadonlyRootfs": self.read_only,
            "Binds": self.volume,
            "CapAdd": self.cap_add,
            "CapDrop": self.cap_drop,
            "Ulimits": self.ulimit.iter().map(|u| parse_ulimit(u)).collect::<Result<Vec<_>>>()?,
            "SecurityOpt": self.security_opt.iter().map(|o| security_opt(o)).collect::<Result<Vec<_>>>()?,
        });
        if self.init {
            host["Init"] = json!(true);
        }
        if !self.mount.is_empty() {
            let mounts = self
                .mount
                .iter()
                .map(|m| super::mounts::parse(m))
                .collect::<Result<Vec<_>>>()?;
            host["Mounts"] = json!(mounts);
        }
        if !self.volumes_from.is_empty() {
            host["VolumesFrom"] = json!(self.volumes_from);
        }
        if !self.tmpfs.is_empty() {
            let mounts: BTreeMap<&str, &str> = self
                .tmpfs
                .iter()
                .map(|t| t.split_once(':').unwrap_or((t.as_str(), "")))
                .collect();
            host["Tmpfs"] = json!(mounts);
        }
        if let Some(m) = &self.memory {
            host["Memory"] = json!(parse_bytes(m)?);
        }
        if let Some(s) = &self.memory_swap {
            host["MemorySwap"] = json!(if s == "-1" { -1 } else { parse_bytes(s)? });
        }
        if let Some(c) = &self.cpus {
            host["NanoCpus"] = json!(parse_cpus(c)?);
        }
        let numbers = [
            ("CpuShares", self.cpu_shares),
            ("PidsLimit", self.pids_limit),
        ];
        for (key, value) in numbers {
            if let Some(v) = value {
                host[key] = json!(v);
            }
        }
        if let Some(c) = &self.cpuset_cpus {
            host["CpusetCpus"] = json!(c);
        }
        if let Some(r) = &self.restart {
            host["RestartPolicy"] = parse_restart(r)?;
        }
        if let Some(r) = &self.runtime {
            host["Runtime"] = json!(r);
        }
        if self.log_driver.is_some() || !self.log_opt.is_empty() {
            host["LogConfig"] = json!({
                "Type": self.log_driver.clone().unwrap_or_default(),
                "Config": key_values(&self.log_opt),
            });
        }
        if self.tty {
            if let Some((h, w)) = crate::terminal::size() {
                host["ConsoleSize"] = json!([h, w]);
            }
        }
        Ok(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(parse_bytes("64m").ok(), Some(64 << 20));
        assert_eq!(parse_bytes("1g").ok(), Some(1 << 30));
        assert_eq!(parse_bytes("512KB").ok(), Some(512 << 10));
        assert_eq!(parse_bytes("100").ok(), Some(100));
        assert!(parse_bytes("abc").is_err());
        assert!(parse_bytes("12x").is_err());
    }

    #[test]
    fn cpus_ulimits_restart() {
        assert_eq!(parse_cpus("0.5").ok(), Some(500_000_000));
        assert!(parse_cpus("-1").is_err());
        assert_eq!(
            parse_ulimit("nofile=512:1024").ok(),
            Some(json!({"Name": "nofile", "Soft": 512, "Hard": 1024}))
        );
        assert!(parse_ulimit("nofile=2:1").is_err());
        assert_eq!(
            parse_restart("on-failure:3").ok(),
            Some(json!({"Name": "on-failure", "MaximumRetryCount": 3}))
        );
        assert!(parse_restart("on-failure:x").is_err());
    }

    #[test]
    fn health_durations_are_not_negative() {
        assert!(health_duration("health-interval", Some(&"-1s".to_string())).is_err());
        assert_eq!(
            health_duration("health-timeout", Some(&"1.5s".to_string())).ok(),
            Some(1_500_000_000)
        );
        assert!(health_duration("health-timeout", Some(&"10".to_string())).is_err());
    }
}
