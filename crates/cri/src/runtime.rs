//! The RuntimeService: version and status here; pods and containers in their modules.

use k8s_cri::v1::runtime_service_server::RuntimeService;
use k8s_cri::v1::*;
use tonic::{Request, Response, Status};

use crate::images::blocking;
use crate::Cri;

/// The kubelet's CRI API version string.
const KUBE_API_VERSION: &str = "0.1.0";

impl Cri {
    fn conditions(&self) -> Vec<RuntimeCondition> {
        let network = match self.cni.network() {
            Ok(_) => RuntimeCondition {
                r#type: "NetworkReady".into(),
                status: true,
                ..Default::default()
            },
            Err(e) => RuntimeCondition {
                r#type: "NetworkReady".into(),
                status: false,
                reason: "NetworkPluginNotReady".into(),
                message: format!("Network plugin returns error: cni plugin not initialized: {e}"),
            },
        };
        let runtime = match &self.engine.paths {
            Some(_) => RuntimeCondition {
                r#type: "RuntimeReady".into(),
                status: true,
                ..Default::default()
            },
            None => RuntimeCondition {
                r#type: "RuntimeReady".into(),
                status: false,
                reason: "RuntimeNotFound".into(),
                message: "berthd found no shim or OCI runtime".into(),
            },
        };
        vec![runtime, network]
    }
}

/// The streaming server's refusals: bad requests, or too many URLs in flight.
fn stream_error(e: berth_cri_streaming::Error) -> crate::error::CriError {
    if e.is_invalid_argument() {
        crate::error::CriError::InvalidArgument(e.to_string())
    } else {
        crate::error::CriError::FailedPrecondition(e.to_string())
    }
}

impl Cri {
    fn stream_server(&self) -> crate::error::Result<&berth_cri_streaming::StreamServer> {
        self.stream.get().ok_or_else(|| {
            crate::error::CriError::FailedPrecondition("the streaming server is not up".into())
        })
    }
}

fn unsupported(what: &str) -> Status {
    Status::unimplemented(format!("{what} is not supported by berth's CRI yet"))
}

#[tonic::async_trait]
impl RuntimeService for crate::Service {
    async fn version(
        &self,
        _request: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: KUBE_API_VERSION.into(),
            runtime_name: "berth".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let cri = self.0.clone();
        let conditions = tokio::task::spawn_blocking(move || cri.conditions())
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let handlers = self
            .0
            .engine
            .paths
            .iter()
            .flat_map(|p| p.runtimes.keys())
            .map(|name| RuntimeHandler {
                name: name.clone(),
                features: Some(RuntimeHandlerFeatures {
                    recursive_read_only_mounts: false,
                    user_namespaces: false,
                }),
            })
            .collect();
        Ok(Response::new(StatusResponse {
            status: Some(RuntimeStatus { conditions }),
            info: Default::default(),
            runtime_handlers: handlers,
            features: None,
        }))
    }

    async fn runtime_config(
        &self,
        _request: Request<RuntimeConfigRequest>,
    ) -> Result<Response<RuntimeConfigResponse>, Status> {
        Ok(Response::new(RuntimeConfigResponse {
            linux: Some(LinuxRuntimeConfiguration {
                cgroup_driver: CgroupDriver::Cgroupfs as i32,
            }),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<RunPodSandboxRequest>,
    ) -> Result<Response<RunPodSandboxResponse>, Status> {
        let req = request.into_inner();
        let config = req
            .config
            .ok_or_else(|| Status::invalid_argument("no sandbox config"))?;
        let pod_sandbox_id =
            blocking(&self.0, move |cri| cri.run_pod(config, req.runtime_handler)).await?;
        Ok(Response::new(RunPodSandboxResponse { pod_sandbox_id }))
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<StopPodSandboxRequest>,
    ) -> Result<Response<StopPodSandboxResponse>, Status> {
        let id = request.into_inner().pod_sandbox_id;
        blocking(&self.0, move |cri| cri.stop_pod(&id)).await?;
        Ok(Response::new(StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<RemovePodSandboxRequest>,
    ) -> Result<Response<RemovePodSandboxResponse>, Status> {
        let id = request.into_inner().pod_sandbox_id;
        blocking(&self.0, move |cri| cri.remove_pod(&id)).await?;
        Ok(Response::new(RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<PodSandboxStatusRequest>,
    ) -> Result<Response<PodSandboxStatusResponse>, Status> {
        let req = request.into_inner();
        let response = blocking(&self.0, move |cri| {
            cri.pod_status(&req.pod_sandbox_id, req.verbose)
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<ListPodSandboxRequest>,
    ) -> Result<Response<ListPodSandboxResponse>, Status> {
        let filter = request.into_inner().filter;
        let items = blocking(&self.0, move |cri| Ok(cri.list_pods(filter))).await?;
        Ok(Response::new(ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        request: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        let req = request.into_inner();
        let container_id = blocking(&self.0, move |cri| {
            cri.create_container(&req.pod_sandbox_id, req.config)
        })
        .await?;
        Ok(Response::new(CreateContainerResponse { container_id }))
    }

    async fn start_container(
        &self,
        request: Request<StartContainerRequest>,
    ) -> Result<Response<StartContainerResponse>, Status> {
        let id = request.into_inner().container_id;
        blocking(&self.0, move |cri| cri.start_container(&id)).await?;
        Ok(Response::new(StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        request: Request<StopContainerRequest>,
    ) -> Result<Response<StopContainerResponse>, Status> {
        let req = request.into_inner();
        blocking(&self.0, move |cri| {
            cri.stop_container(&req.container_id, req.timeout)
        })
        .await?;
        Ok(Response::new(StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        request: Request<RemoveContainerRequest>,
    ) -> Result<Response<RemoveContainerResponse>, Status> {
        let id = request.into_inner().container_id;
        blocking(&self.0, move |cri| cri.remove_container(&id)).await?;
        Ok(Response::new(RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        request: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let filter = request.into_inner().filter;
        let containers = blocking(&self.0, move |cri| Ok(cri.list_containers(filter))).await?;
        Ok(Response::new(ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        request: Request<ContainerStatusRequest>,
    ) -> Result<Response<ContainerStatusResponse>, Status> {
        let id = request.into_inner().container_id;
        let status = blocking(&self.0, move |cri| cri.container_status(&id)).await?;
        Ok(Response::new(ContainerStatusResponse {
            status: Some(status),
            info: Default::default(),
        }))
    }

    async fn update_container_resources(
        &self,
        request: Request<UpdateContainerResourcesRequest>,
    ) -> Result<Response<UpdateContainerResourcesResponse>, Status> {
        let r = request.into_inner();
        blocking(&self.0, move |cri| {
            cri.update_resources(&r.container_id, r.linux)
        })
        .await?;
        Ok(Response::new(UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        request: Request<ReopenContainerLogRequest>,
    ) -> Result<Response<ReopenContainerLogResponse>, Status> {
        let id = request.into_inner().container_id;
        blocking(&self.0, move |cri| {
            let engine_id = cri.engine_id(&id)?;
            Ok(cri.engine.reopen_log(&engine_id)?)
        })
        .await?;
        Ok(Response::new(ReopenContainerLogResponse {}))
    }

    async fn exec_sync(
        &self,
        request: Request<ExecSyncRequest>,
    ) -> Result<Response<ExecSyncResponse>, Status> {
        let req = request.into_inner();
        let (stdout, stderr, exit_code) = blocking(&self.0, move |cri| {
            cri.exec_sync(&req.container_id, req.cmd, req.timeout)
        })
        .await?;
        Ok(Response::new(ExecSyncResponse {
            stdout,
            stderr,
            exit_code,
        }))
    }

    async fn exec(&self, request: Request<ExecRequest>) -> Result<Response<ExecResponse>, Status> {
        let r = request.into_inner();
        let url = blocking(&self.0, move |cri| {
            cri.running(&r.container_id)?;
            cri.stream_server()?
                .get_exec(berth_cri_streaming::ExecRequest {
                    container_id: r.container_id,
                    cmd: r.cmd,
                    tty: r.tty,
                    stdin: r.stdin,
                    stdout: r.stdout,
                    stderr: r.stderr,
                })
                .map_err(stream_error)
        })
        .await?;
        Ok(Response::new(ExecResponse { url }))
    }

    async fn attach(
        &self,
        request: Request<AttachRequest>,
    ) -> Result<Response<AttachResponse>, Status> {
        let r = request.into_inner();
        let url = blocking(&self.0, move |cri| {
            cri.running(&r.container_id)?;
            cri.stream_server()?
                .get_attach(berth_cri_streaming::AttachRequest {
                    container_id: r.container_id,
                    tty: r.tty,
                    stdin: r.stdin,
                    stdout: r.stdout,
                    stderr: r.stderr,
                })
                .map_err(stream_error)
        })
        .await?;
        Ok(Response::new(AttachResponse { url }))
    }

    async fn port_forward(
        &self,
        request: Request<PortForwardRequest>,
    ) -> Result<Response<PortForwardResponse>, Status> {
        let r = request.into_inner();
        let url = blocking(&self.0, move |cri| {
            let pod = cri.ready_pod(&r.pod_sandbox_id)?;
            cri.stream_server()?
                .get_port_forward(berth_cri_streaming::PortForwardRequest {
                    pod_sandbox_id: pod,
                    ports: r.port,
                })
                .map_err(stream_error)
        })
        .await?;
        Ok(Response::new(PortForwardResponse { url }))
    }

    async fn container_stats(
        &self,
        request: Request<ContainerStatsRequest>,
    ) -> Result<Response<ContainerStatsResponse>, Status> {
        let id = request.into_inner().container_id;
        let stats = blocking(&self.0, move |cri| cri.container_stats(&id)).await?;
        Ok(Response::new(ContainerStatsResponse { stats: Some(stats) }))
    }

    async fn list_container_stats(
        &self,
        request: Request<ListContainerStatsRequest>,
    ) -> Result<Response<ListContainerStatsResponse>, Status> {
        let filter = request.into_inner().filter;
        let stats = blocking(&self.0, move |cri| cri.list_container_stats(filter)).await?;
        Ok(Response::new(ListContainerStatsResponse { stats }))
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<PodSandboxStatsRequest>,
    ) -> Result<Response<PodSandboxStatsResponse>, Status> {
        let id = request.into_inner().pod_sandbox_id;
        let stats = blocking(&self.0, move |cri| cri.pod_stats(&id)).await?;
        Ok(Response::new(PodSandboxStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<ListPodSandboxStatsRequest>,
    ) -> Result<Response<ListPodSandboxStatsResponse>, Status> {
        let filter = request.into_inner().filter;
        let stats = blocking(&self.0, move |cri| cri.list_pod_stats(filter)).await?;
        Ok(Response::new(ListPodSandboxStatsResponse { stats }))
    }

    async fn update_runtime_config(
        &self,
        request: Request<UpdateRuntimeConfigRequest>,
    ) -> Result<Response<UpdateRuntimeConfigResponse>, Status> {
        // As containerd without a CNI config template: the pod CIDR the kubelet sends is
        // the CNI configuration's business, which berth reads from the conf dir.
        let cidr = request
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        if !cidr.is_empty() {
            tracing::info!(%cidr, "UpdateRuntimeConfig: the pod CIDR is left to the CNI configuration");
        }
        Ok(Response::new(UpdateRuntimeConfigResponse {}))
    }

    async fn checkpoint_container(
        &self,
        _request: Request<CheckpointContainerRequest>,
    ) -> Result<Response<CheckpointContainerResponse>, Status> {
        Err(unsupported("CheckpointContainer"))
    }

    type GetContainerEventsStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<ContainerEventResponse, Status>> + Send>,
    >;

    async fn get_container_events(
        &self,
        _request: Request<GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        let events = crate::events::subscribe(self.0.clone());
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(events),
        )))
    }

    async fn list_metric_descriptors(
        &self,
        _request: Request<ListMetricDescriptorsRequest>,
    ) -> Result<Response<ListMetricDescriptorsResponse>, Status> {
        Err(unsupported("ListMetricDescriptors"))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _request: Request<ListPodSandboxMetricsRequest>,
    ) -> Result<Response<ListPodSandboxMetricsResponse>, Status> {
        Err(unsupported("ListPodSandboxMetrics"))
    }
}
