//! berthd: opens the engine's stores, listens on its sockets and serves the Docker Engine
//! API until SIGTERM or SIGINT.

mod config;
mod listen;
mod reaper;
mod roots;

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

fn init_logging(level: &str) {
    let level = match level {
        "fatal" | "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
}

/// SIGTERM or SIGINT. The handlers are installed when this is called, not when the future
/// is first polled: a signal that arrives once the socket accepts must stop berthd gracefully.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}

/// A helper binary: next to berthd first (a build or install directory), else on PATH.
fn find_binary(name: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(name);
    if path.is_absolute() {
        return path.exists().then(|| path.to_path_buf());
    }
    let beside = std::env::current_exe().ok()?.parent()?.join(name);
    if beside.exists() {
        return Some(beside);
    }
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.exists())
}

fn helper_paths(config: &config::Config) -> Option<berth_engine::containers::Paths> {
    let mut runtimes = std::collections::BTreeMap::new();
    for (name, path) in &config.runtimes {
        match find_binary(path) {
            Some(binary) => {
                runtimes.insert(name.clone(), binary);
            }
            None => {
                tracing::warn!(runtime = %name, %path, "runtime not found: containers cannot use it")
            }
        }
    }
    // As dockerd offers runc: the runtimes Debian packages, when installed and not configured.
    for name in ["runc", "crun"] {
        if !runtimes.contains_key(name) {
            if let Some(binary) = find_binary(name) {
                runtimes.insert(name.to_string(), binary);
            }
        }
    }
    runtimes.get(&config.default_runtime)?;
    Some(berth_engine::containers::Paths {
        shim: find_binary("berth-shim")?,
        runtimes,
        default_runtime: config.default_runtime.clone(),
        runtime_root: config.exec_root.join("runtime"),
        init: match &config.init_path {
            Some(path) => find_binary(&path.to_string_lossy()),
            None => find_binary("docker-init").or_else(|| find_binary("tini-static")),
        },
    })
}

/// The registry client, with the mirrors and endpoints of `registry-config`.
fn registry_client(config: &config::Config) -> Result<berth_registry::Client> {
    let hosts = match &config.registry_config {
        Some(dir) => berth_registry::mirrors::RegistryHosts::load(dir)?,
        None => berth_registry::mirrors::RegistryHosts::default(),
    };
    if !hosts.is_empty() {
        tracing::info!(dir = ?config.registry_config, "registry hosts configured");
    }
    berth_registry::Client::new(&config.insecure_registries)
        .and_then(|c| c.with_registry_hosts(hosts))
        .context("set up the registry client")
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

async fn run(config: config::Config) -> Result<()> {
    // First: a bad hosts.toml or CA file is a configuration error, reported before anything
    // is touched.
    let registry = registry_client(&config)?;
    roots::prepare(
        &config.data_root,
        &config.exec_root,
        listen::group_id(listen::SOCKET_GROUP),
    )?;
    let _pidfile = listen::PidFile::create(&config.pidfile)?;
    // Before any shim starts, so that what a dying shim leaves comes here.
    reaper::start()?;
    let data_root = config.data_root.clone();
    let exec_root = config.exec_root.clone();
    let paths = helper_paths(&config);
    let paths_for_info = paths.clone();
    if paths.is_none() {
        tracing::warn!("berth-shim or the runtime was not found: containers cannot start");
    }
    let seccomp = match &config.seccomp_profile {
        config::SeccompDefault::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read seccomp profile {}", path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("seccomp profile {}", path.display()))?;
            tracing::info!(profile = %path.display(), "default seccomp profile");
            Some(v)
        }
        config::SeccompDefault::Builtin => {
            tracing::info!("default seccomp profile: berth's built-in one");
            Some(berth_engine::containers::seccomp::builtin_profile())
        }
        config::SeccompDefault::Unconfined => {
            tracing::warn!("seccomp-profile unconfined: containers run unconfined unless they ask for a profile");
            None
        }
    };
    let log_limits = berth_engine::containers::LogLimits::parse(
        &config.log_opts,
        berth_engine::containers::LogLimits::default(),
    )
    .context("daemon log-opts")?;
    let network = config.network.clone();
    let cgroup_parent = config.cgroup_parent.clone();
    let engine = tokio::task::spawn_blocking(move || {
        let mut engine = berth_engine::Engine::open(&data_root, &exec_root, paths)?;
        engine.default_seccomp = seccomp;
        engine.default_log = log_limits;
        engine.default_cgroup_parent = cgroup_parent;
        // The default bridge's IPv6 pool may be derived from the daemon's id: made first.
        listen::daemon_id(&data_root).map_err(|e| berth_engine::Error::Io(format!("{e:#}")))?;
        engine.set_network(network)?;
        engine.restore_containers();
        Ok::<_, berth_engine::Error>(engine)
    })
    .await
    .context("open the engine")?
    .with_context(|| format!("open the stores under {}", config.data_root.display()))?;
    let shutdown = shutdown_signal()?;
    let mut listeners = Vec::new();
    let mut sockets = Vec::new();
    for path in &config.sockets {
        let (listener, guard) = listen::unix_socket(path)?;
        listeners.push(listener);
        sockets.push(guard);
    }
    let info = berth_api::server::DaemonInfo {
        id: listen::daemon_id(&config.data_root)?,
        name: hostname(),
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        data_root: config.data_root.display().to_string(),
        storage_driver: config.storage_driver.clone(),
        default_runtime: config.default_runtime.clone(),
        runtimes: match &paths_for_info {
            Some(p) => p
                .runtimes
                .iter()
                .map(|(name, path)| (name.clone(), path.display().to_string()))
                .collect(),
            None => config.runtimes.clone().into_iter().collect(),
        },
        insecure_registries: config.insecure_registries.clone(),
        security_options: vec![format!(
            "name=seccomp,profile={}",
            config.seccomp_profile.describe()
        )],
    };
    let engine = Arc::new(engine);
    let restarts = engine.clone();
    let stopped = engine.clone();
    tokio::task::spawn_blocking(move || berth_engine::Engine::enable_restarts(&restarts))
        .await
        .context("apply restart policies")?;
    let state = Arc::new(berth_api::server::State {
        engine,
        registry: Arc::new(registry),
        info,
    });
    let (stopping, stop_seen) = tokio::sync::watch::channel(false);
    let cri = start_cri(&config, &state, stop_seen)?;
    tracing::info!(sockets = ?config.sockets, data_root = %config.data_root.display(), "berthd is ready");
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    berth_api::server::serve(listeners, state, shutdown).await;
    if let Some((task, _guard)) = cri {
        let _ = task.await;
    }
    drop(sockets);
    // Nothing of the spare network namespaces is left behind (containers live on).
    let _ = tokio::task::spawn_blocking(move || stopped.containers.drain_network_spares()).await;
    tracing::info!("berthd stopped");
    Ok(())
}

type CriTask = (tokio::task::JoinHandle<()>, listen::SocketGuard);

/// The Kubernetes CRI on its own socket (root only, as containerd's), sharing the engine
/// and registry client with the Docker API; it stops when `stop` turns true.
fn start_cri(
    config: &config::Config,
    state: &berth_api::server::State,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<CriTask>> {
    let Some(path) = &config.cri_socket else {
        return Ok(None);
    };
    let cri = berth_cri::Cri::new(
        state.engine.clone(),
        state.registry.clone(),
        berth_cri::Config {
            cni_conf_dir: config.cni_conf_dir.clone(),
            cni_bin_dirs: config.cni_bin_dirs.clone(),
            cni_timeout: config.cni_plugin_timeout,
            state_dir: config.exec_root.join("cri"),
            data_dir: config.data_root.join("cri"),
            stream_address: config.cri_stream_address,
        },
    )
    .context("set up the CRI")?;
    let (listener, guard) = listen::unix_socket(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("chmod {}", path.display()))?;
    tracing::info!(socket = %path.display(), "the CRI is served");
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = berth_cri::serve(listener, cri, stopped).await {
            tracing::error!("the CRI server: {e}");
        }
    });
    Ok(Some((task, guard)))
}

/// glibc gives each new thread its own malloc arena, up to 8 per core, and returns little
/// of them: with a thread per running container and per blocking request, that was a third
/// of berthd's memory. Two arenas serve its short critical sections.
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let flags = config::Flags::parse();
    let config = match config::Config::load(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    init_logging(&config.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berthd: start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(config));
    // Blocking workers may still wait on things that outlive a stop (an attach waiting for
    // a container's start, a `wait` on a running container): the containers live on, their
    // shims keep everything; the daemon does not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("berthd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
