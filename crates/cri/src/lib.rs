//! The Kubernetes Container Runtime Interface (CRI v1) that berthd serves beside the Docker
//! API, on the same image store, shims and OCI runtimes. Pods are held by bind-mounted
//! namespace files (no pause process), networked through CNI; their containers are engine
//! containers kept apart from Docker's (see `containers`).

mod authority;
mod containers;
mod error;
mod events;
mod images;
mod pods;
mod runtime;
mod stats;
mod streaming;

use std::path::PathBuf;
use std::sync::Arc;

use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt;

pub use error::CriError;

/// Where the CRI finds what it needs beyond the engine.
#[derive(Debug, Clone)]
pub struct Config {
    /// CNI network configuration (`/etc/cni/net.d`).
    pub cni_conf_dir: PathBuf,
    /// CNI plugins (`/usr/lib/cni`, `/opt/cni/bin`).
    pub cni_bin_dirs: Vec<PathBuf>,
    /// How long one CNI plugin run may take.
    pub cni_timeout: std::time::Duration,
    /// What lives while berthd runs (pods' namespace files): under the exec root.
    pub state_dir: PathBuf,
    /// Pod records, under the data root.
    pub data_dir: PathBuf,
    /// Where the streaming server (exec, attach, port-forward URLs) listens; port 0: any.
    pub stream_address: std::net::SocketAddr,
}

/// The CRI's state: the engine and registry it shares with the Docker API.
pub struct Cri {
    pub engine: Arc<berth_engine::Engine>,
    pub registry: Arc<berth_registry::Client>,
    pub config: Config,
    pods: pods::Pods,
    containers: containers::CriContainers,
    cni: berth_network::cni::Cni,
    /// The previous CPU reading of each container and pod (`usage_nano_cores`).
    cpu_rates: stats::CpuRates,
    /// Set once `serve` has bound it.
    stream: std::sync::OnceLock<berth_cri_streaming::StreamServer>,
}

impl Cri {
    /// The CRI's state, with what the previous run left: pods without a record are swept,
    /// and the networks of the restored pods are checked by a thread of their own.
    pub fn new(
        engine: Arc<berth_engine::Engine>,
        registry: Arc<berth_registry::Client>,
        config: Config,
    ) -> Result<Arc<Cri>, CriError> {
        for dir in [&config.state_dir, &config.data_dir] {
            std::fs::create_dir_all(dir).map_err(|e| CriError::Io {
                what: format!("create {}", dir.display()),
                source: e,
            })?;
        }
        let cri = Cri {
            pods: pods::Pods::open(&config.data_dir.join("pods"))?,
            containers: containers::CriContainers::open(&config.data_dir.join("containers"))?,
            cni: berth_network::cni::Cni::new(&config.cni_conf_dir, &config.cni_bin_dirs)
                .with_timeout(config.cni_timeout),
            cpu_rates: stats::CpuRates::default(),
            stream: std::sync::OnceLock::new(),
            engine,
            registry,
            config,
        };
        cri.sweep_orphan_pods();
        let restored = cri.restored_networks();
        let cri = Arc::new(cri);
        if !restored.is_empty() {
            let checker = Arc::clone(&cri);
            std::thread::Builder::new()
                .name("berth-cri-check".into())
                .spawn(move || checker.check_restored_networks(restored))
                .map_err(|source| CriError::Io {
                    what: "start the check of the restored pods' networks".into(),
                    source,
                })?;
        }
        Ok(cri)
    }
}

/// The gRPC services over the shared state (the generated traits are foreign, so they are
/// implemented for this local handle).
#[derive(Clone)]
pub(crate) struct Service(pub(crate) Arc<Cri>);

/// Why the CRI could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the CRI streaming server: {0}")]
    Streaming(#[from] berth_cri_streaming::Error),
    #[error("the CRI gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// Serve the RuntimeService and ImageService on `listener`, and the streaming server, until
/// `shutdown` completes.
pub async fn serve(
    listener: UnixListener,
    cri: Arc<Cri>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let config = berth_cri_streaming::Config {
        addr: cri.config.stream_address,
        ..Default::default()
    };
    let backend = Arc::new(streaming::StreamBackend(cri.clone()));
    let server = berth_cri_streaming::StreamServer::bind(config, backend).await?;
    let _ = cri.stream.set(server);
    let served = tonic::transport::Server::builder()
        .add_service(RuntimeServiceServer::new(Service(cri.clone())))
        .add_service(ImageServiceServer::new(Service(cri.clone())))
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(listener).map(|conn| conn.map(authority::relay)),
            shutdown,
        )
        .await;
    if let Some(server) = cri.stream.get() {
        server.shutdown();
    }
    Ok(served?)
}
