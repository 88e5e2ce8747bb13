//! `create` and `run` flags, turned into the Engine API's create body (Config with
//! HostConfig inside) as the docker CLI sends it. Values are checked here where docker's
//! CLI checks them (sizes, CPUs, ulimits); the daemon checks the rest.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use berth_api_types::container::{
    Config, HealthConfig, HostConfig, LogConfig, RestartPolicy, StrSlice, Ulimit,
};
use clap::{ArgAction, Args};

use crate::commands::key_value_map;

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
    /// Attach to STDIN, STDOUT or STDERR (given again for several; default: output and
    /// error).
    #[arg(short, long)]
    pub attach: Vec<String>,
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
    /// Read labels from a file (KEY=VALUE lines).
    #[arg(long)]
    pub label_file: Vec<std::path::PathBuf>,
    /// An annotation for the OCI runtime (KEY=VALUE).
    #[arg(long)]
    pub annotation: Vec<String>,
    /// The volume driver for the container's volumes (local).
    #[arg(long)]
    pub volume_driver: Option<String>,
    /// Print nothing while pulling the image.
    #[arg(short, long)]
    pub quiet: bool,
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
    #[command(flatten)]
    pub net_flags: super::net_flags::NetFlags,
    #[command(flatten)]
    pub device_flags: super::device_flags::DeviceFlags,
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
pub fn parse_ulimit(s: &str) -> Result<Ulimit> {
    let bad = || anyhow::anyhow!("invalid ulimit argument: {s}");
    let (name, limits) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    let hard: i64 = hard.parse().map_err(|_| bad())?;
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `--restart on-failure:3` as the API's {Name, MaximumRetryCount}.
pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((name, count)) => {
            let count: i64 = count
                .parse()
                .with_context(|| format!("invalid restart policy format: {s}"))?;
            (name, count)
        }
        None => (s, 0),
    };
    Ok(RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: count,
    })
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
/// The environment of `--env-file` lines, then `-e` flags (`KEY` alone: its value here),
/// as the docker CLI reads them for run, create and exec.
pub fn environment(files: &[std::path::PathBuf], flags: &[String]) -> Result<Vec<String>> {
    let mut env = Vec::new();
    for file in files {
        env.extend(env_file(file)?);
    }
    env.extend(flags.iter().filter_map(|e| env_entry(e)));
    Ok(env)
}

fn env_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(env_entry)
        .collect())
}

/// The streams a run attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl CreateArgs {
    /// `-a` (case aside, as the docker CLI's ValidateAttach), `-i` adding standard input;
    /// without `-a`: output and error.
    pub fn streams(&self) -> Result<Streams> {
        let mut streams = Streams {
            stdin: self.interactive,
            stdout: self.attach.is_empty(),
            stderr: self.attach.is_empty(),
        };
        for a in &self.attach {
            match a.to_ascii_lowercase().as_str() {
                "stdin" => streams.stdin = true,
                "stdout" => streams.stdout = true,
                "stderr" => streams.stderr = true,
                _ => bail!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"),
            }
        }
        Ok(streams)
    }

    /// `--label-file` lines, then `--label` flags (which win), as the docker CLI reads them.
    fn labels(&self) -> Result<BTreeMap<String, String>> {
        let mut lines = Vec::new();
        for file in &self.label_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("open {}", file.display()))?;
            lines.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
        lines.extend(self.label.iter().cloned());
        Ok(key_value_map(&lines))
    }
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

impl CreateArgs {
    /// The body of POST /containers/create.
    pub fn body(&self) -> Result<Config> {
        let env = environment(&self.env_file, &self.env)?;
        let streams = self.streams()?;
        let (image, command) = self
            .image_and_command
            .split_first()
            .context("no image given")?;
        let mut config = Config {
            image: image.clone(),
            tty: self.tty,
            open_stdin: self.interactive,
            stdin_once: self.interactive,
            attach_stdin: streams.stdin,
            attach_stdout: streams.stdout,
            attach_stderr: streams.stderr,
            env: Some(env),
            labels: self.labels()?,
            cmd: (!command.is_empty()).then(|| StrSlice(command.to_vec())),
            entrypoint: self.entrypoint.as_ref().map(|e| StrSlice(vec![e.clone()])),
            working_dir: self.workdir.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            hostname: self.hostname.clone().unwrap_or_default(),
            stop_signal: self.stop_signal.clone().unwrap_or_default(),
            stop_timeout: self.stop_timeout,
            healthcheck: self.healthcheck()?,
            host_config: self.host_config()?,
            ..Config::default()
        };
        self.host_flags.apply(&mut config.host_config)?;
        self.device_flags.apply(&mut config.host_config)?;
        config.host_config.annotations = key_value_map(&self.annotation);
        config.host_config.volume_driver = self.volume_driver.clone().unwrap_or_default();
        self.net_flags.apply(&mut config)?;
        Ok(config)
    }

    /// `--health-*` and `--no-healthcheck` as Config.Healthcheck, as the docker CLI builds it.
    fn healthcheck(&self) -> Result<Option<HealthConfig>> {
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
            return Ok(Some(HealthConfig {
                test: vec!["NONE".into()],
                ..HealthConfig::default()
            }));
        }
        if !any {
            return Ok(None);
        }
        if retries < 0 {
            bail!("--health-retries cannot be negative");
        }
        let test = if cmd.is_empty() {
            Vec::new()
        } else {
            vec!["CMD-SHELL".into(), cmd.to_string()]
        };
        Ok(Some(HealthConfig {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        }))
    }

    fn host_config(&self) -> Result<HostConfig> {
        let mut host = HostConfig {
            auto_remove: self.rm,
            privileged: self.privileged,
            readonly_rootfs: self.read_only,
            binds: self.volume.clone(),
            cap_add: StrSlice(self.cap_add.clone()),
            cap_drop: StrSlice(self.cap_drop.clone()),
            ulimits: self
                .ulimit
                .iter()
                .map(|u| parse_ulimit(u))
                .collect::<Result<_>>()?,
            security_opt: self
                .security_opt
                .iter()
                .map(|o| security_opt(o))
                .collect::<Result<_>>()?,
            init: self.init.then_some(true),
            mounts: self
                .mount
                .iter()
                .map(|m| super::mounts::parse(m))
                .collect::<Result<_>>()?,
            volumes_from: self.volumes_from.clone(),
            tmpfs: self
                .tmpfs
                .iter()
                .map(|t| t.split_once(':').unwrap_or((t.as_str(), "")))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            pids_limit: self.pids_limit,
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            runtime: self.runtime.clone().unwrap_or_default(),
            ..HostConfig::default()
        };
        if let Some(m) = &self.memory {
            host.memory = parse_bytes(m)?;
        }
        if let Some(s) = &self.memory_swap {
            host.memory_swap = if s == "-1" { -1 } else { parse_bytes(s)? };
        }
        if let Some(c) = &self.cpus {
            host.nano_cpus = parse_cpus(c)?;
        }
        if let Some(r) = &self.restart {
            host.restart_policy = parse_restart(r)?;
        }
        if self.log_driver.is_some() || !self.log_opt.is_empty() {
            host.log_config = LogConfig {
                driver: self.log_driver.clone().unwrap_or_default(),
                config: key_value_map(&self.log_opt),
            };
        }
        if self.tty {
            if let Some((h, w)) = crate::terminal::size() {
                host.console_size = [h.into(), w.into()];
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
            Some(Ulimit {
                name: "nofile".into(),
                soft: 512,
                hard: 1024
            })
        );
        assert!(parse_ulimit("nofile=2:1").is_err());
        assert_eq!(
            parse_restart("on-failure:3").ok(),
            Some(RestartPolicy {
                name: "on-failure".into(),
                maximum_retry_count: 3
            })
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

#[cfg(test)]
mod body_tests {
    use super::*;
    use berth_api_types::container::decode::create_request;
    use berth_api_types::container::Mount;
    use berth_api_types::container::NetworkingConfig;
    use berth_api_types::network::EndpointSettings;
    use clap::Parser;

    #[derive(Debug, Parser)]
    #[command(disable_help_flag = true)]
    struct Line {
        #[command(flatten)]
        create: CreateArgs,
    }

    /// The body for `args`, as berthd decodes it.
    fn decoded(args: &[&str]) -> Config {
        let line = Line::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .expect("a valid command line");
        let body = serde_json::to_value(line.create.body().expect("a body")).expect("json");
        create_request(&body).expect("the daemon takes the body")
    }

    #[test]
    fn a_plain_run_body_asks_for_nothing_berth_refuses() {
        // Every member goes out, zero ones too: none may trip the refusal of unsupported keys.
        let config = decoded(&["busybox"]);
        assert_eq!(config.image, "busybox");
        assert_eq!(config.cmd, None);
        assert!(config.attach_stdout && config.attach_stderr && !config.attach_stdin);
        assert_eq!(config.host_config.network_mode, "default");
        assert_eq!(config.host_config.memory_swappiness, Some(-1));
        assert_eq!(config.host_config.pids_limit, None);
        assert_eq!(config.host_config.oom_kill_disable, None);
        assert_eq!(config.host_config.init, None);
        assert_eq!(config.networking_config, NetworkingConfig::default());
    }

    #[test]
    fn a_run_body_decodes_at_the_daemon_to_the_config_asked_for() {
        let config = decoded(&[
            "-i",
            "--name",
            "web",
            "-e",
            "A=1",
            "-w",
            "/srv",
            "-u",
            "1000:1000",
            "--entrypoint",
            "/bin/sh",
            "-h",
            "box",
            "-l",
            "tier=front",
            "--restart",
            "on-failure:3",
            "--init",
            "--read-only",
            "--tmpfs",
            "/run:size=1m",
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "0.5",
            "--pids-limit",
            "0",
            "--ulimit",
            "nofile=512:1024",
            "--cap-add",
            "NET_ADMIN",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "5",
            "--network",
            "none",
            "-v",
            "/tmp:/host:ro",
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1m",
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-size=1m",
            "--health-cmd",
            "true",
            "--health-retries",
            "2",
            "--oom-score-adj",
            "-5",
            "--device-read-bps",
            "/dev/sda:1mb",
            "--mac-address",
            "02:42:ac:11:00:02",
            "busybox",
            "sh",
            "-c",
            "exit 0",
        ]);
        let expected = Config {
            hostname: "box".into(),
            user: "1000:1000".into(),
            attach_stdin: true,
            attach_stdout: true,
            attach_stderr: true,
            open_stdin: true,
            stdin_once: true,
            env: Some(vec!["A=1".into()]),
            cmd: Some(StrSlice(vec!["sh".into(), "-c".into(), "exit 0".into()])),
            healthcheck: Some(HealthConfig {
                test: vec!["CMD-SHELL".into(), "true".into()],
                retries: 2,
                ..HealthConfig::default()
            }),
            image: "busybox".into(),
            working_dir: "/srv".into(),
            entrypoint: Some(StrSlice(vec!["/bin/sh".into()])),
            labels: BTreeMap::from([("tier".into(), "front".into())]),
            stop_signal: "SIGINT".into(),
            stop_timeout: Some(5),
            host_config: HostConfig {
                binds: vec!["/tmp:/host:ro".into()],
                log_config: LogConfig {
                    driver: "json-file".into(),
                    config: BTreeMap::from([("max-size".into(), "1m".into())]),
                },
                network_mode: "none".into(),
                restart_policy: RestartPolicy {
                    name: "on-failure".into(),
                    maximum_retry_count: 3,
                },
                cap_add: StrSlice(vec!["NET_ADMIN".into()]),
                oom_score_adj: -5,
                readonly_rootfs: true,
                tmpfs: BTreeMap::from([("/run".into(), "size=1m".into())]),
                memory: 64 << 20,
                nano_cpus: 500_000_000,
                blkio_device_read_bps: Some(vec![berth_api_types::container::ThrottleDevice {
                    path: "/dev/sda".into(),
                    rate: 1 << 20,
                }]),
                memory_swap: -1,
                memory_swappiness: Some(-1),
                pids_limit: Some(0),
                ulimits: vec![Ulimit {
                    name: "nofile".into(),
                    soft: 512,
                    hard: 1024,
                }],
                mounts: vec![Mount {
                    kind: "tmpfs".into(),
                    target: "/t".into(),
                    tmpfs_options: Some(berth_api_types::container::TmpfsOptions {
                        size_bytes: 1 << 20,
                        ..Default::default()
                    }),
                    ..Mount::default()
                }],
                init: Some(true),
                ..HostConfig::default()
            },
            networking_config: NetworkingConfig {
                endpoints_config: BTreeMap::from([(
                    "none".into(),
                    EndpointSettings {
                        mac_address: "02:42:ac:11:00:02".into(),
                        ..EndpointSettings::default()
                    },
                )]),
            },
            ..Config::default()
        };
        assert_eq!(config, expected);
    }
}
