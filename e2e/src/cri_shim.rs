//! A RuntimeService pass-through on a unix socket of its own that forwards every call to a
//! runtime unchanged, except for two things the kubelet would have spared the runtime:
//!
//! - a `RuntimeConfig` the runtime answers with `Unimplemented` is answered with the cgroupfs
//!   driver. critest asks for the cgroup driver before every pod; when the call fails it
//!   assumes systemd and puts its pods under `/test.slice`, which a cgroupfs-only runtime
//!   rejects. Once the runtime implements the call, its own answer goes through.
//! - a `RunPodSandbox` without a hostname (and not on the host network) gets the pod name cut
//!   to 63 bytes, as the kubelet always sends one; critest sends none, and its pod names are
//!   longer than the kernel's 64-byte hostname limit.
//!
//! Without these almost every spec fails at `RunPodSandbox` and hides everything else.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result};
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::runtime_service_server::{RuntimeService, RuntimeServiceServer};
use k8s_cri::v1::*;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tonic::codegen::tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

/// The forwarding service.
pub struct RuntimeConfigShim {
    upstream: RuntimeServiceClient<Channel>,
}

/// Forwarding methods, written in the form `async_trait` expands `async fn` into, because that
/// attribute does not see inside macro calls.
macro_rules! forward {
    ($($method:ident($req:ident) -> $resp:ident;)*) => {
        $(
            fn $method<'life0, 'async_trait>(
                &'life0 self,
                request: Request<$req>,
            ) -> Pin<Box<dyn Future<Output = Result<Response<$resp>, Status>> + Send + 'async_trait>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                let mut upstream = self.upstream.clone();
                Box::pin(async move { upstream.$method(request.into_inner()).await })
            }
        )*
    };
}

#[tonic::async_trait]
impl RuntimeService for RuntimeConfigShim {
    type GetContainerEventsStream = tonic::Streaming<ContainerEventResponse>;

    forward! {
        version(VersionRequest) -> VersionResponse;
        stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse;
        remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse;
        pod_sandbox_status(PodSandboxStatusRequest) -> PodSandboxStatusResponse;
        list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse;
        create_container(CreateContainerRequest) -> CreateContainerResponse;
        start_container(StartContainerRequest) -> StartContainerResponse;
        stop_container(StopContainerRequest) -> StopContainerResponse;
        remove_container(RemoveContainerRequest) -> RemoveContainerResponse;
        list_containers(ListContainersRequest) -> ListContainersResponse;
        container_status(ContainerStatusRequest) -> ContainerStatusResponse;
        update_container_resources(UpdateContainerResourcesRequest) -> UpdateContainerResourcesResponse;
        reopen_container_log(ReopenContainerLogRequest) -> ReopenContainerLogResponse;
        exec_sync(ExecSyncRequest) -> ExecSyncResponse;
        exec(ExecRequest) -> ExecResponse;
        attach(AttachRequest) -> AttachResponse;
        port_forward(PortForwardRequest) -> PortForwardResponse;
        container_stats(ContainerStatsRequest) -> ContainerStatsResponse;
        list_container_stats(ListContainerStatsRequest) -> ListContainerStatsResponse;
        pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse;
        list_pod_sandbox_stats(ListPodSandboxStatsRequest) -> ListPodSandboxStatsResponse;
        update_runtime_config(UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse;
        status(StatusRequest) -> StatusResponse;
        checkpoint_container(CheckpointContainerRequest) -> CheckpointContainerResponse;
        list_metric_descriptors(ListMetricDescriptorsRequest) -> ListMetricDescriptorsResponse;
        list_pod_sandbox_metrics(ListPodSandboxMetricsRequest) -> ListPodSandboxMetricsResponse;
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<RunPodSandboxRequest>,
    ) -> Result<Response<RunPodSandboxResponse>, Status> {
        let mut request = request.into_inner();
        if let Some(config) = request.config.as_mut() {
            let host_network = config
                .linux
                .as_ref()
                .and_then(|l| l.security_context.as_ref())
                .and_then(|s| s.namespace_options.as_ref())
                .is_some_and(|n| n.network == NamespaceMode::Node as i32);
            if config.hostname.is_empty() && !host_network {
                let name = config.metadata.as_ref().map_or("", |m| m.name.as_str());
                config.hostname = kubelet_hostname(name);
            }
        }
        self.upstream.clone().run_pod_sandbox(request).await
    }

    async fn get_container_events(
        &self,
        request: Request<GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        self.upstream
            .clone()
            .get_container_events(request.into_inner())
            .await
    }

    async fn runtime_config(
        &self,
        request: Request<RuntimeConfigRequest>,
    ) -> Result<Response<RuntimeConfigResponse>, Status> {
        match self
            .upstream
            .clone()
            .runtime_config(request.into_inner())
            .await
        {
            Err(status) if status.code() == Code::Unimplemented => {
                Ok(Response::new(RuntimeConfigResponse {
                    linux: Some(LinuxRuntimeConfiguration {
                        cgroup_driver: CgroupDriver::Cgroupfs as i32,
                    }),
                }))
            }
            other => other,
        }
    }
}

/// The pod name cut to 63 bytes without a trailing `-` or `.`, as the kubelet does.
fn kubelet_hostname(name: &str) -> String {
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].trim_end_matches(['-', '.']).to_string()
}

/// Accepted connections of a unix listener, as tonic's `serve_with_incoming` wants them.
struct Incoming(UnixListener);

impl Stream for Incoming {
    type Item = std::io::Result<UnixStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_accept(cx)
            .map(|accepted| Some(accepted.map(|(stream, _)| stream)))
    }
}

/// A running shim; dropping it stops serving and removes its socket.
pub struct ShimHandle {
    socket: PathBuf,
    task: JoinHandle<()>,
}

impl ShimHandle {
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for ShimHandle {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Serves the shim on `socket`, forwarding to the runtime listening on `upstream`.
pub async fn serve(socket: &Path, upstream: &Path) -> Result<ShimHandle> {
    let client = crate::cri::runtime_client(upstream).await?;
    let listener =
        UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    let service = RuntimeServiceServer::new(RuntimeConfigShim { upstream: client })
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(Incoming(listener))
            .await;
    });
    Ok(ShimHandle {
        socket: socket.to_path_buf(),
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::kubelet_hostname;

    #[test]
    fn hostnames_are_cut_like_the_kubelet_does() {
        assert_eq!(kubelet_hostname("short"), "short");
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        assert_eq!(kubelet_hostname(&long), "a".repeat(62));
        assert_eq!(kubelet_hostname(&"x".repeat(80)).len(), 63);
    }
}
