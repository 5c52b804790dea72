//! Routes each RuntimeService RPC to its handler module. RPCs whose subsystem has not landed yet
//! answer UNIMPLEMENTED naming themselves.

use std::future::Future;
use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use super::CriServer;
use super::rpc::{self, Kind};
use crate::api;

/// Declares RuntimeService methods that are not built yet. Written in the form `async_trait`
/// expands `async fn` into, because that attribute does not see inside macro calls.
macro_rules! not_yet {
    ($($method:ident: $req:ident => $resp:ident as $name:literal;)*) => {
        $(
            fn $method<'life0, 'async_trait>(
                &'life0 self,
                _request: Request<api::$req>,
            ) -> Pin<Box<dyn Future<Output = Result<Response<api::$resp>, Status>> + Send + 'async_trait>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async { rpc::unimplemented($name) })
            }
        )*
    };
}

#[tonic::async_trait]
impl api::RuntimeService for CriServer {
    async fn version(
        &self,
        request: Request<api::VersionRequest>,
    ) -> Result<Response<api::VersionResponse>, Status> {
        rpc::serve("Version", Kind::Query, async {
            Ok(super::version::handle(request.into_inner()))
        })
        .await
    }

    async fn status(
        &self,
        request: Request<api::StatusRequest>,
    ) -> Result<Response<api::StatusResponse>, Status> {
        rpc::serve(
            "Status",
            Kind::Query,
            super::status::handle(self, request.into_inner()),
        )
        .await
    }

    not_yet! {
        run_pod_sandbox: RunPodSandboxRequest => RunPodSandboxResponse as "RunPodSandbox";
        stop_pod_sandbox: StopPodSandboxRequest => StopPodSandboxResponse as "StopPodSandbox";
        remove_pod_sandbox: RemovePodSandboxRequest => RemovePodSandboxResponse as "RemovePodSandbox";
        pod_sandbox_status: PodSandboxStatusRequest => PodSandboxStatusResponse as "PodSandboxStatus";
        list_pod_sandbox: ListPodSandboxRequest => ListPodSandboxResponse as "ListPodSandbox";
        create_container: CreateContainerRequest => CreateContainerResponse as "CreateContainer";
        start_container: StartContainerRequest => StartContainerResponse as "StartContainer";
        stop_container: StopContainerRequest => StopContainerResponse as "StopContainer";
        remove_container: RemoveContainerRequest => RemoveContainerResponse as "RemoveContainer";
        list_containers: ListContainersRequest => ListContainersResponse as "ListContainers";
        container_status: ContainerStatusRequest => ContainerStatusResponse as "ContainerStatus";
        update_container_resources: UpdateContainerResourcesRequest => UpdateContainerResourcesResponse as "UpdateContainerResources";
        reopen_container_log: ReopenContainerLogRequest => ReopenContainerLogResponse as "ReopenContainerLog";
        exec_sync: ExecSyncRequest => ExecSyncResponse as "ExecSync";
        exec: ExecRequest => ExecResponse as "Exec";
        attach: AttachRequest => AttachResponse as "Attach";
        port_forward: PortForwardRequest => PortForwardResponse as "PortForward";
        container_stats: ContainerStatsRequest => ContainerStatsResponse as "ContainerStats";
        list_container_stats: ListContainerStatsRequest => ListContainerStatsResponse as "ListContainerStats";
        pod_sandbox_stats: PodSandboxStatsRequest => PodSandboxStatsResponse as "PodSandboxStats";
        list_pod_sandbox_stats: ListPodSandboxStatsRequest => ListPodSandboxStatsResponse as "ListPodSandboxStats";
        update_runtime_config: UpdateRuntimeConfigRequest => UpdateRuntimeConfigResponse as "UpdateRuntimeConfig";
        checkpoint_container: CheckpointContainerRequest => CheckpointContainerResponse as "CheckpointContainer";
        list_metric_descriptors: ListMetricDescriptorsRequest => ListMetricDescriptorsResponse as "ListMetricDescriptors";
        list_pod_sandbox_metrics: ListPodSandboxMetricsRequest => ListPodSandboxMetricsResponse as "ListPodSandboxMetrics";
        runtime_config: RuntimeConfigRequest => RuntimeConfigResponse as "RuntimeConfig";
    }

    type GetContainerEventsStream =
        Pin<Box<dyn Stream<Item = Result<api::ContainerEventResponse, Status>> + Send + 'static>>;

    async fn get_container_events(
        &self,
        _request: Request<api::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        rpc::unimplemented("GetContainerEvents")
    }
}
