//! start, stop, kill, wait, remove — through berth-shim and the OCI runtime.

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{ContainerRecord, Containers, Status};
use crate::error::{Error, Result};
use crate::Engine;

/// Where the helper binaries and the runtime's state are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub shim: PathBuf,
    /// The OCI runtimes by name (berth-runtime, runc, crun...), found on this host.
    pub runtimes: std::collections::BTreeMap<String, PathBuf>,
    /// The runtime of containers that do not name one.
    pub default_runtime: String,
    /// Each runtime keeps its state in `<runtime_root>/<name>`.
    pub runtime_root: PathBuf,
    /// The static init binary for --init (docker-init or tini-static), if there is one.
    pub init: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl Paths {
    /// The runtime a container uses: the one it named at create, else the default.
    pub(crate) fn name<'a>(&'a self, runtime: &'a str) -> &'a str {
        if runtime.is_empty() {
            &self.default_runtime
        } else {
            runtime
        }
    }

    /// The binary of a runtime by name.
    pub fn binary(&self, runtime: &str) -> Result<&PathBuf> {
        let name = self.name(runtime);
        self.runtimes.get(name).ok_or_else(|| {
            Error::InvalidArgument(format!("unknown or invalid runtime name: {name}"))
        })
    }

    /// Whether the runtime sets the loopback of a network namespace it creates up: runc (a
    /// "loopback" network for a new namespace), crun and berth-runtime do; another (a
    /// wrapper script, say) may not, and berthd does it between create and start.
    pub(crate) fn brings_loopback_up(&self, runtime: &str) -> bool {
        self.binary(runtime)
            .ok()
            .and_then(|b| b.file_name())
            .is_some_and(|n| RUNTIMES_SETTING_LOOPBACK_UP.iter().any(|r| n == *r))
    }

    /// Where a runtime keeps the state of its containers.
    pub fn state_root(&self, runtime: &str) -> PathBuf {
        self.runtime_root.join(self.name(runtime))
    }
}

/// The OCI runtimes known to set a new network namespace's loopback up.
const RUNTIMES_SETTING_LOOPBACK_UP: [&str; 3] = ["berth-runtime", "runc", "crun"];

fn ms_since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

pub(crate) fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

impl Engine {
    fn paths(&self) -> Result<&Paths> {
        self.paths
            .as_ref()
            .ok_or_else(|| Error::Io("berthd was started without its helper binaries".into()))
    }

    fn rootfs(&self, id: &str) -> PathBuf {
        self.containers.rootfs(id)
    }

    /// Mount the rootfs, write the bundle, start the shim; returns when the container runs.
    /// Ok(false) when it was already running.
    pub fn start_container(&self, name: &str) -> Result<bool> {
        let record = self.containers.resolve(name)?;
        // A restarting container counts as running, as in moby (its policy starts it).
        if record.state.restarting {
            return Ok(false);
        }
        self.start_record(record)
    }

    /// The start of a restart policy, at the end of the back-off.
    pub(crate) fn start_restarting(&self, id: &str) -> Result<bool> {
        let record = self.containers.resolve(id)?;
        self.start_record(record)
    }

    fn start_record(&self, record: ContainerRecord) -> Result<bool> {
        if record.state.status == Status::Running {
            return Ok(false);
        }
        let paths = match self.paths() {
            Ok(p) => p.clone(),
            Err(e) => {
                self.containers.waiting.forget(&record.id);
                return Err(e);
            }
        };
        // The previous run's shim may still be having the runtime delete the container.
        if !self.containers.shims.wait_ended(&record.id, PREVIOUS_SHIM) {
            self.containers.waiting.forget(&record.id);
            return Err(Error::Conflict(format!(
                "the previous run of container {} is still being cleaned up",
                record.id
            )));
        }
        let started = std::time::Instant::now();
        let bundle = match self.prepare_start(&record, &paths) {
            Ok(bundle) => {
                tracing::debug!(id = %record.id, ms = ms_since(started), "start: rootfs and bundle");
                bundle
            }
            Err(e) => {
                self.start_failed(&record, &e);
                if record.auto_remove() {
                    // No shim was started to remove it at its end: as dockerd, a --rm
                    // container that cannot start is removed (the docker CLI waits for it).
                    self.execs.forget_container(&record.id);
                    let _ = remove_files(&self.containers, &record.id, true);
                }
                return Err(e);
            }
        };
        let result = self.spawn_shim(&record, &paths, &bundle);
        if let Err(e) = &result {
            self.start_failed(&record, e);
        }
        result.map(|()| true)
    }

    /// Mount the container's root filesystem and write its bundle; the bundle's path.
    fn prepare_start(&self, record: &ContainerRecord, paths: &Paths) -> Result<PathBuf> {
        let dir = self.containers.dir(&record.id);
        let image = self.images.resolve(&record.image)?;
        // A committed image's top layer may still be being unpacked: this waits for it.
        let lower: Vec<PathBuf> = self.images.lower_dirs(&image.record.layers)?;
        let rootfs = self.rootfs(&record.id);
        // Never beside a copy's private mount of the same upper directory (files/).
        let _copies = super::files::wait_for_copies(&dir);
        super::rootfs::unmount(&rootfs)?;
        super::rootfs::mount_overlay(&lower, &dir.join("upper"), &dir.join("work"), &rootfs)?;
        let bundle = self.containers.bundle(&record.id);
        std::fs::create_dir_all(&bundle)
            .map_err(|e| Error::Io(format!("create {}: {e}", bundle.display())))?;
        let sources = super::host::joins::prepare(&self.containers, record)?;
        let connected;
        let record = match (record.on_network(), self.containers.net.get()) {
            (true, Some(networks)) => {
                let endpoints = networks.connect_all(&self.containers, record)?;
                connected = ContainerRecord {
                    endpoints,
                    ..record.clone()
                };
                &connected
            }
            (true, None) => {
                return Err(Error::NotFound(format!(
                    "network {} not found",
                    record.network_mode()
                )))
            }
            _ => record,
        };
        let mut config = super::spec::oci_config(record, &rootfs, paths.init.as_deref(), &sources)?;
        let volumes = self.start_volumes(record, &rootfs)?;
        crate::volumes::mounts::add_to_spec(&mut config, volumes);
        let config = serde_json::to_vec(&config).map_err(|e| Error::Io(e.to_string()))?;
        super::write_private(&bundle.join("config.json"), &config)?;
        Ok(bundle)
    }

    /// A start failed with `e`: its attaches end, its root filesystem is unmounted, and the
    /// error is recorded.
    fn start_failed(&self, record: &ContainerRecord, e: &Error) {
        // Attaches waiting for this start end with it (the docker CLI waits for them).
        self.containers.waiting.forget(&record.id);
        self.containers.disconnect(&record.id);
        let _ = super::rootfs::unmount(&self.rootfs(&record.id));
        self.containers.release_volumes(&record.id);
        let msg = e.to_string();
        let _ = self.containers.update(&record.id, |r| {
            r.manually_stopped = false;
            r.state.restarting = false;
            r.state.error = msg;
            r.state.exit_code = 127;
        });
    }

    fn spawn_shim(&self, record: &ContainerRecord, paths: &Paths, bundle: &Path) -> Result<()> {
        let dir = self.containers.dir(&record.id);
        let exit_file = bundle.join(EXIT_FILE);
        let _ = std::fs::remove_file(&exit_file);
        let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::Io(format!("pipe: {e}")))?;
        let ready_raw = std::os::fd::AsRawFd::as_raw_fd(&ready_w);
        let runtime = paths.binary(&record.runtime)?;
        let sealed = (paths.name(&record.runtime) == "berth-runtime")
            .then(|| self.containers.shims.sealed_runtime.get(runtime))
            .flatten();
        let sealed_raw = sealed.as_deref().map(std::os::fd::AsRawFd::as_raw_fd);
        let mut cmd = Command::new(&paths.shim);
        cmd.arg("--id")
            .arg(&record.id)
            .arg("--bundle")
            .arg(bundle)
            .arg("--runtime")
            .arg(runtime)
            .arg("--runtime-root")
            .arg(paths.state_root(&record.runtime))
            .arg("--cgroups-path")
            .arg(super::spec::cgroups_path(record))
            .arg("--log-max-size")
            .arg(record.log.max_size.to_string())
            .arg("--log-max-files")
            .arg(record.log.max_files.max(1).to_string())
            .arg("--exit-file")
            .arg(&exit_file)
            .arg("--ready-fd")
            .arg("3")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match record.pod.as_ref().map(|p| p.log_path.as_ref()) {
            Some(Some(path)) => {
                cmd.arg("--log").arg(path).arg("--log-format").arg("cri");
            }
            Some(None) => {}
            None if record.host.log_driver == super::host::LogDriver::JsonFile => {
                cmd.arg("--log")
                    .arg(dir.join(format!("{}-json.log", record.id)));
            }
            None => {}
        }
        for (on, flag) in [
            (record.config.tty, "--tty"),
            (record.config.open_stdin, "--stdin"),
            (record.config.stdin_once, "--stdin-once"),
        ] {
            if on {
                cmd.arg(flag);
            }
        }
        if sealed.is_some() {
            cmd.arg("--runtime-fd").arg("4");
        }
        // Nothing to do between create and start: no attach waits for the start (`docker
        // run` without -d attaches first) and the network namespace is ready (a pod's, a
        // bridge's, the host's, another container's; a `none` container's own new one has
        // its loopback up, unless the runtime leaves that to berthd). The shim then starts
        // the container with its create, sparing a runtime process and a request.
        let loopback_by_berthd = needs_loopback_by_berthd(record, paths);
        let at_once = !self.containers.waiting.any(&record.id) && !loopback_by_berthd;
        if at_once {
            cmd.arg("--start");
        }
        // SAFETY: between fork and exec only async-signal-safe calls: setsid, dup2, fcntl.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                super::shims::place_shim_fds(ready_raw, sealed_raw)
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| Error::Io(format!("start {}: {e}", paths.shim.display())))?;
        self.containers.shims.started(&record.id);
        drop(ready_w);
        let mut line = String::new();
        // Kept open until the start is sent: the shim ends a container whose berthd died
        // before starting it.
        let mut ready = std::io::BufReader::new(std::fs::File::from(ready_r));
        let spawned = std::time::Instant::now();
        ready
            .read_line(&mut line)
            .map_err(|e| Error::Io(format!("read the shim's report: {e}")))?;
        tracing::debug!(id = %record.id, ms = ms_since(spawned), "start: the shim's runtime create");
        let mut exit_watch = None;
        let report = line.trim_end().split_once(' ');
        let loopback = match report {
            Some(("created", pid)) if loopback_by_berthd => loopback_up(pid),
            _ => Ok(()),
        };
        let outcome = match report {
            Some(("started", pid)) if at_once => {
                exit_watch = watch_exit(bundle);
                // An attach that came during the start.
                self.connect_waiting(&record.id);
                self.record_started(&record.id, pid)
            }
            Some(("created", _)) if loopback.is_err() => loopback,
            Some(("created", _)) => {
                exit_watch = watch_exit(bundle);
                // Attaches first (docker run attaches before it starts), then the start.
                self.connect_waiting(&record.id);
                let starting = std::time::Instant::now();
                match super::stream::request(bundle, &berth_shim_protocol::Request::Start) {
                    Ok((_, pid)) => {
                        tracing::debug!(id = %record.id, ms = ms_since(starting), "start: the shim's runtime start");
                        self.record_started(&record.id, &pid)
                    }
                    Err(e) => Err(Error::InvalidArgument(format!(
                        "failed to start the container: {e}"
                    ))),
                }
            }
            Some(("failed", msg)) => Err(Error::InvalidArgument(format!(
                "failed to create the container: {msg}"
            ))),
            _ => Err(Error::Io("the shim ended without a report".into())),
        };
        drop(ready);
        // Record the exit; only after the state says running, so a container that ends at
        // once is not marked running afterwards.
        let watcher = ShimWatch {
            containers: self.containers.clone(),
            id: record.id.clone(),
            runtime: super::orphans::Runtime::of(paths, &record.runtime),
        };
        std::thread::spawn(move || {
            let mut child = child;
            watcher.watch(exit_watch, || {
                let _ = child.wait();
            });
        });
        outcome
    }

    /// The container runs as process `pid` (as the shim reported it).
    fn record_started(&self, id: &str, pid: &str) -> Result<()> {
        let pid: i32 = pid.parse().unwrap_or(0);
        self.containers.update(id, |r| {
            r.manually_stopped = false;
            r.state.restarting = false;
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.started_at = Some(now());
            // As moby's SetRunning: the last run's code is gone.
            r.state.exit_code = 0;
            r.state.oom_killed = false;
            r.state.error.clear();
        })?;
        self.containers.event(id, "start", &[]);
        self.containers.health_started(id);
        Ok(())
    }

    fn runtime_kill(&self, id: &str, signal: &str) -> Result<()> {
        let record = self.containers.resolve(id)?;
        self.runtime(&record, &["kill", id, signal]).map(drop)?;
        // A frozen container gets the signal once thawed (as Docker does for stop and kill).
        if record.state.paused {
            self.runtime(&record, &["resume", id])?;
            self.containers.update(id, |r| r.state.paused = false)?;
        }
        Ok(())
    }

    /// Run the container's OCI runtime with `args`; its output, or its error as a conflict.
    pub(crate) fn runtime(&self, record: &ContainerRecord, args: &[&str]) -> Result<Vec<u8>> {
        let paths = self.paths()?;
        let binary = paths.binary(&record.runtime)?;
        let out = Command::new(binary)
            .arg("--root")
            .arg(paths.state_root(&record.runtime))
            .args(args)
            .output()
            .map_err(|e| Error::Io(format!("run {}: {e}", binary.display())))?;
        if !out.status.success() {
            return Err(Error::Conflict(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(out.stdout)
    }

    /// `docker kill`: the container must be running.
    pub fn kill_container(&self, name: &str, signal: &str) -> Result<()> {
        let mut record = self.containers.resolve(name)?;
        if record.state.restarting {
            // No process to signal: the kill cancels the restart, as in moby.
            if self
                .containers
                .restarts
                .cancel(&self.containers, &record.id)
            {
                return Ok(());
            }
            record = self.containers.resolve(&record.id)?;
        }
        if record.state.status != Status::Running {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        mark_manually_stopped(&self.containers, &record.id)?;
        let signal = if signal.is_empty() { "KILL" } else { signal };
        if let Err(e) = self.runtime_kill(&record.id, signal) {
            // Its process ended between the check and the signal (the runtime no longer
            // has it; the exit is being recorded): the kill has nothing left to do, and the
            // mark above keeps a restart policy from starting it again.
            let after = self
                .containers
                .wait_until(&record.id, EXIT_RECORD_WAIT, |r| {
                    r.is_none_or(|r| r.state.status != Status::Running)
                });
            if after.is_some_and(|r| r.state.status == Status::Running) {
                return Err(e);
            }
            return Ok(());
        }
        self.containers
            .event(&record.id, "kill", &[("signal", signal.to_string())]);
        // As dockerd's: a SIGKILL returns once the exit is recorded, so that an inspect or
        // an rm right after sees the container stopped.
        let upper = signal.to_ascii_uppercase();
        let sigkill = matches!(upper.trim_start_matches("SIG"), "KILL" | "9");
        if sigkill {
            self.containers.wait_until(&record.id, KILL_WAIT, |r| {
                r.is_none_or(|r| r.state.status != Status::Running)
            });
        }
        Ok(())
    }

    /// `docker stop`: the stop signal, then SIGKILL after `timeout`. Ok(false) if not running.
    pub fn stop_container(&self, name: &str, timeout: Option<i64>) -> Result<bool> {
        let mut record = self.containers.resolve(name)?;
        if record.state.restarting {
            // In its back-off: the stop cancels the restart (moby's ExitOnNext).
            if self
                .containers
                .restarts
                .cancel(&self.containers, &record.id)
            {
                self.containers.event(&record.id, "stop", &[]);
                return Ok(true);
            }
            record = self.containers.resolve(&record.id)?;
        }
        if record.state.status != Status::Running {
            return Ok(false);
        }
        mark_manually_stopped(&self.containers, &record.id)?;
        let signal = record
            .config
            .stop_signal
            .clone()
            .unwrap_or_else(|| "TERM".into());
        let secs = timeout.or(record.config.stop_timeout).unwrap_or(10).max(0) as u64;
        let _ = self.runtime_kill(&record.id, &signal);
        let stopped =
            |r: Option<&ContainerRecord>| r.is_none_or(|r| r.state.status != Status::Running);
        if self
            .containers
            .wait_until(&record.id, Duration::from_secs(secs), stopped)
            .is_some_and(|r| r.state.status == Status::Running)
        {
            let _ = self.runtime_kill(&record.id, "KILL");
            self.containers
                .wait_until(&record.id, Duration::from_secs(30), stopped);
        }
        self.containers.event(&record.id, "stop", &[]);
        Ok(true)
    }

    /// `docker wait`: the exit code once `condition` holds.
    /// Wait for `condition`, counted from `record` as it was when the client asked (so that
    /// a next-exit asked before start is not missed however fast the container ends).
    /// Ends early, with no meaningful code, once `cancel` is set (and waiters are woken:
    /// [`Containers::wake_waiters`]), as when the client has gone.
    pub fn wait_container(
        &self,
        record: &ContainerRecord,
        condition: WaitCondition,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<i32> {
        let finished_before = record.state.finished_at.clone();
        let failed_removals = self.containers.failed_removals(&record.id);
        let forever = Duration::from_secs(u64::MAX / 4);
        let cancelled = || cancel.load(std::sync::atomic::Ordering::Relaxed);
        let r = self
            .containers
            .wait_until(&record.id, forever, |r| match (condition, r) {
                _ if cancelled() => true,
                (_, None) => true,
                // A removal that fails meanwhile ends the wait with its error (moby's
                // SetRemovalError), or `run --rm` would wait for ever.
                (WaitCondition::Removed, Some(_)) => {
                    self.containers.failed_removals(&record.id) != failed_removals
                }
                // A container in its restart back-off is running as moby counts it.
                (WaitCondition::NotRunning, Some(r)) => {
                    r.state.status != Status::Running && !r.state.restarting
                }
                (WaitCondition::NextExit, Some(r)) => {
                    r.state.status == Status::Exited && r.state.finished_at != finished_before
                }
            });
        Ok(match r {
            Some(r) if condition == WaitCondition::Removed && !cancelled() => {
                return Err(Error::Conflict(r.state.error));
            }
            Some(r) => r.state.exit_code,
            None => self
                .containers
                .removed_exit(&record.id)
                .unwrap_or(record.state.exit_code),
        })
    }

    /// `docker rm`: a running container needs `force` (it is killed first).
    pub fn remove_container(&self, name: &str, force: bool) -> Result<()> {
        self.remove_container_with(name, force, false)
    }

    /// `docker rm [-f] [-v]`: with `volumes`, its anonymous volumes go too.
    pub fn remove_container_with(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        let mut record = self.containers.resolve(name)?;
        if record.state.restarting {
            if !force {
                return Err(Error::Conflict(format!(
                    "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                    record.id
                )));
            }
            self.containers
                .restarts
                .cancel(&self.containers, &record.id);
            record = self.containers.resolve(&record.id)?;
        }
        if record.state.status == Status::Running {
            if !force {
                return Err(Error::Conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    record.id
                )));
            }
            // Not to be restarted by its policy on the way out.
            mark_manually_stopped(&self.containers, &record.id)?;
            let _ = self.runtime_kill(&record.id, "KILL");
            self.containers
                .wait_until(&record.id, Duration::from_secs(30), |r| {
                    r.is_none_or(|r| r.state.status != Status::Running)
                });
        }
        self.execs.forget_container(&record.id);
        remove_files(&self.containers, &record.id, volumes)
    }

    pub fn containers(&self) -> &Arc<Containers> {
        &self.containers
    }

    /// After a restart of berthd: containers recorded as running either ended meanwhile
    /// (their shim wrote exit.json in the bundle and is gone), or still run: berthd connects
    /// to their shim again and records the exit when the shim reports it. A container whose
    /// shim died is ended, as is anything else a runtime holds that no shim serves.
    pub fn restore_containers(&self) {
        let mut adopted = std::collections::HashSet::new();
        for r in self.containers.list() {
            if r.state.status != Status::Running {
                continue;
            }
            let bundle = self.containers.bundle(&r.id);
            let watcher = ShimWatch {
                containers: self.containers.clone(),
                id: r.id.clone(),
                runtime: self
                    .paths
                    .as_ref()
                    .and_then(|p| super::orphans::Runtime::of(p, &r.runtime)),
            };
            match super::stream::request(&bundle, &berth_shim_protocol::Request::Wait) {
                Ok((stream, _)) => {
                    self.containers.shims.started(&r.id);
                    adopted.insert(r.id.clone());
                    // As moby's restore: probes begin again, the status "starting".
                    self.containers.health_started(&r.id);
                    // The wait connection ends when the shim does.
                    std::thread::spawn(move || watcher.watch(Some(stream), || {}));
                }
                Err(_) => watcher.watch(None, || {}),
            }
        }
        self.containers.restore_volumes(&adopted);
        self.end_orphans(&adopted);
        if let Some(networks) = self.containers.net.get() {
            networks.reconcile(&self.containers);
        }
    }

    /// The default bridge, as the network API shows it.
    pub fn default_bridge(&self) -> Option<super::net::BridgeView> {
        self.containers
            .net
            .get()
            .and_then(|n| n.default.as_ref())
            .and_then(|n| n.view())
    }

    /// The daemon's networks (None: berthd was started without networking).
    pub fn networks(&self) -> Option<&super::networks::Networks> {
        self.containers.net.get().map(|n| n.as_ref())
    }

    /// The default bridge network (before [`Engine::restore_containers`], which repairs it).
    pub fn set_network(&self, config: super::net::NetConfig) -> Result<()> {
        let dir = self.data_root.join("networks");
        let networks = super::networks::Networks::open(config, dir)?;
        let _ = self.containers.net.set(Arc::new(networks));
        Ok(())
    }
}

/// Docker brings `lo` up in every network namespace it creates: so does berthd, in a
/// container's own (made by the runtime, whichever it is), between create and start, so
/// the user's program never sees it down. `pid`: the created init's, as the shim reports it.
/// A connection the shim tells the exit on as soon as it knows it (before the runtime's
/// delete); None if the shim is gone already (its exit file has the exit).
fn watch_exit(bundle: &Path) -> Option<super::stream::ShimStream> {
    super::stream::request(bundle, &berth_shim_protocol::Request::Wait)
        .ok()
        .map(|(stream, _)| stream)
}

/// A `none` container's network namespace is its runtime's to make; berthd sets its
/// loopback up if the runtime does not. (The bridge's namespace has its loopback up
/// already: net.rs made it.)
fn needs_loopback_by_berthd(record: &ContainerRecord, paths: &Paths) -> bool {
    record.pod.is_none()
        && record.network_mode() == "none"
        && !paths.brings_loopback_up(&record.runtime)
}

fn loopback_up(pid: &str) -> Result<()> {
    let pid: u32 = pid
        .parse()
        .map_err(|_| Error::Io(format!("the shim reported no init pid: {pid:?}")))?;
    berth_network::loopback_up(Path::new(&format!("/proc/{pid}/ns/net")))
        .map_err(|e| Error::Io(format!("failed to start the container: {e}")))
}

/// How long a SIGKILL from `docker kill` waits for the exit (dockerd's Kill waits as long).
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long a kill that found no process waits for that exit to be recorded.
const EXIT_RECORD_WAIT: Duration = Duration::from_secs(2);

/// How long a start waits for the previous run's shim to finish its cleanup.
const PREVIOUS_SHIM: Duration = Duration::from_secs(30);

/// The shim's exit record, in the bundle.
const EXIT_FILE: &str = "exit.json";

/// Follows one shim to its end: records the exit it reports (before the runtime's delete,
/// so waiters do not wait for that), then, once the shim is gone, ends the container if the
/// shim died without deleting it, removes the bundle and lets the next start of the
/// container go on.
struct ShimWatch {
    containers: Arc<Containers>,
    id: String,
    /// The container's runtime (None: no longer configured).
    runtime: Option<super::orphans::Runtime>,
}

impl ShimWatch {
    /// `stream`: a wait connection to the shim (None: the shim is gone or never served);
    /// `wait_gone` returns once the shim process has ended.
    fn watch(self, mut stream: Option<super::stream::ShimStream>, wait_gone: impl FnOnce()) {
        let reported = stream.as_mut().and_then(|s| {
            let mut line = String::new();
            s.read_line(&mut line).ok()?;
            serde_json::from_str::<Value>(&line).ok()
        });
        if let Some(exit) = &reported {
            record_exit(&self.containers, &self.id, exit);
        }
        if let Some(mut s) = stream {
            let _ = std::io::copy(&mut s, &mut std::io::sink());
        }
        wait_gone();
        // Still held by the runtime: the shim died (SIGKILL) and nobody else would end it.
        let ended = self.runtime.as_ref().is_some_and(|r| r.end(&self.id));
        let unreported = reported.is_none().then(|| {
            std::fs::read(self.containers.bundle(&self.id).join(EXIT_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .unwrap_or_else(|| {
                    if ended {
                        super::orphans::killed_exit()
                    } else {
                        Value::Null
                    }
                })
        });
        self.containers.remove_bundle(&self.id);
        self.containers.shims.ended(&self.id);
        if let Some(exit) = unreported {
            record_exit(&self.containers, &self.id, &exit);
        }
    }
}

/// Remove container `id` (its root filesystem is unmounted with its directory, after);
/// with `volumes`, its anonymous volumes too.
fn remove_files(containers: &Containers, id: &str, volumes: bool) -> Result<()> {
    let mounts = match containers.resolve(id) {
        Ok(r) if volumes => r.host.volumes,
        _ => Vec::new(),
    };
    containers.discard_dir(id)?;
    // Before the container is gone from the waiters' view, so that `run --rm` returns
    // with its volumes removed.
    containers.remove_anonymous_volumes(id, &mounts);
    containers.event(id, "destroy", &[]);
    // A running shim removes the bundle itself when it is done.
    if !containers.shims.running(id) {
        containers.remove_bundle(id);
    }
    containers.forget(id);
    containers.waiting.forget(id);
    Ok(())
}

/// The container has ended (`exit` is the shim's exit record; Null if it left none):
/// unmount, record, and honour --rm.
fn record_exit(containers: &Containers, id: &str, exit: &Value) {
    // Before the exit is saved, so that the record keeps the health it ended with.
    containers.health_stopped(id);
    // Its address, veth, namespace and ports go before anyone sees it exited (a restart
    // by policy makes them anew).
    containers.disconnect(id);
    let auto_remove = containers.resolve(id).is_ok_and(|r| r.auto_remove());
    if !auto_remove {
        let _ = super::rootfs::unmount(&containers.rootfs(id));
    }
    containers.release_volumes(id);
    let restarts = !auto_remove && containers.restarts_enabled();
    let code = exit["exit_code"].as_i64().unwrap_or(255) as i32;
    let oom_killed = exit["oom_killed"].as_bool().unwrap_or(false);
    let error = exit["error"].as_str().unwrap_or_default().to_string();
    let finished = exit["finished_at"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(now);
    let ended = |r: &mut ContainerRecord| {
        // A container that never started stays created, with the error.
        if r.state.status == Status::Running {
            r.state.status = Status::Exited;
        }
        r.state.paused = false;
        r.state.pid = 0;
        r.state.exit_code = code;
        r.state.oom_killed = oom_killed;
        r.state.finished_at = Some(finished);
        if !error.is_empty() {
            r.state.error = error;
        }
        // The policy decides as the exit is recorded (moby's SetRestarting), so nobody
        // sees the container exited, or removes it, before its restart.
        if restarts && r.state.status == Status::Exited && r.restart.after_exit(r) {
            r.state.restarting = true;
            r.restart_count += 1;
        }
    };
    let updated = if auto_remove {
        containers.update_unsaved(id, ended)
    } else {
        containers.update(id, ended)
    };
    if let Err(e) = updated {
        // Known in memory (waiters, inspect) all the same; on disk it still runs, and a
        // restarted berthd finds its shim gone and records it as ended.
        tracing::error!("container {id} exited with {code}, but its state could not be saved: {e}");
    }
    if oom_killed {
        containers.event(id, "oom", &[]);
    }
    containers.event(id, "die", &[("exitCode", code.to_string())]);
    if auto_remove {
        if let Err(e) = remove_files(containers, id, true) {
            tracing::error!("container {id} exited, but could not be removed (--rm): {e}");
            let _ = super::rootfs::unmount(&containers.rootfs(id));
            containers.removal_failed(id, &format!("unable to remove container {id}: {e}"));
        }
        return;
    }
    containers.exited(id);
}

/// A user's stop, kill or removal: marked so that its restart policy leaves it alone. A
/// mark that cannot be saved (a full disk) holds in memory and does not stop the signal,
/// as moby only warns when its checkpoint fails there.
fn mark_manually_stopped(containers: &Containers, id: &str) -> Result<()> {
    match containers.update(id, |r| r.manually_stopped = true) {
        Ok(_) => Ok(()),
        Err(Error::Io(e)) => {
            tracing::warn!("container {id}: {e}");
            Ok(())
        }
        Err(e) => Err(e),
    }
}
