//! Routes each RuntimeService RPC to its handler module. RPCs crius does not support
//! (checkpoint/restore) answer UNIMPLEMENTED naming themselves and the reason.

use tonic::{Request, Response, Status};

use super::CriServer;
use super::rpc::{self, Kind};
use crate::api;

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

    async fn run_pod_sandbox(
        &self,
        request: Request<api::RunPodSandboxRequest>,
    ) -> Result<Response<api::RunPodSandboxResponse>, Status> {
        rpc::serve(
            "RunPodSandbox",
            Kind::Mutation,
            super::run_pod_sandbox::handle(self, request.into_inner()),
        )
        .await
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<api::StopPodSandboxRequest>,
    ) -> Result<Response<api::StopPodSandboxResponse>, Status> {
        rpc::serve(
            "StopPodSandbox",
            Kind::Mutation,
            super::stop_pod_sandbox::handle(self, request.into_inner()),
        )
        .await
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<api::RemovePodSandboxRequest>,
    ) -> Result<Response<api::RemovePodSandboxResponse>, Status> {
        rpc::serve(
            "RemovePodSandbox",
            Kind::Mutation,
            super::remove_pod_sandbox::handle(self, request.into_inner()),
        )
        .await
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<api::PodSandboxStatusRequest>,
    ) -> Result<Response<api::PodSandboxStatusResponse>, Status> {
        rpc::serve(
            "PodSandboxStatus",
            Kind::Query,
            super::pod_sandbox_status::handle(self, request.into_inner()),
        )
        .await
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<api::ListPodSandboxRequest>,
    ) -> Result<Response<api::ListPodSandboxResponse>, Status> {
        rpc::serve(
            "ListPodSandbox",
            Kind::Query,
            super::list_pod_sandbox::handle(self, request.into_inner()),
        )
        .await
    }

    async fn create_container(
        &self,
        request: Request<api::CreateContainerRequest>,
    ) -> Result<Response<api::CreateContainerResponse>, Status> {
        rpc::serve(
            "CreateContainer",
            Kind::Mutation,
            super::create_container::handle(self, request.into_inner()),
        )
        .await
    }

    async fn start_container(
        &self,
        request: Request<api::StartContainerRequest>,
    ) -> Result<Response<api::StartContainerResponse>, Status> {
        rpc::serve(
            "StartContainer",
            Kind::Mutation,
            super::start_container::handle(self, request.into_inner()),
        )
        .await
    }

    async fn stop_container(
        &self,
        request: Request<api::StopContainerRequest>,
    ) -> Result<Response<api::StopContainerResponse>, Status> {
        rpc::serve(
            "StopContainer",
            Kind::Mutation,
            super::stop_container::handle(self, request.into_inner()),
        )
        .await
    }

    async fn remove_container(
        &self,
        request: Request<api::RemoveContainerRequest>,
    ) -> Result<Response<api::RemoveContainerResponse>, Status> {
        rpc::serve(
            "RemoveContainer",
            Kind::Mutation,
            super::remove_container::handle(self, request.into_inner()),
        )
        .await
    }

    async fn list_containers(
        &self,
        request: Request<api::ListContainersRequest>,
    ) -> Result<Response<api::ListContainersResponse>, Status> {
        rpc::serve(
            "ListContainers",
            Kind::Query,
            super::list_containers::handle(self, request.into_inner()),
        )
        .await
    }

    async fn container_status(
        &self,
        request: Request<api::ContainerStatusRequest>,
    ) -> Result<Response<api::ContainerStatusResponse>, Status> {
        rpc::serve(
            "ContainerStatus",
            Kind::Query,
            super::container_status::handle(self, request.into_inner()),
        )
        .await
    }

    async fn update_container_resources(
        &self,
        request: Request<api::UpdateContainerResourcesRequest>,
    ) -> Result<Response<api::UpdateContainerResourcesResponse>, Status> {
        rpc::serve(
            "UpdateContainerResources",
            Kind::Mutation,
            super::update_container_resources::handle(self, request.into_inner()),
        )
        .await
    }

    async fn reopen_container_log(
        &self,
        request: Request<api::ReopenContainerLogRequest>,
    ) -> Result<Response<api::ReopenContainerLogResponse>, Status> {
        rpc::serve(
            "ReopenContainerLog",
            Kind::Mutation,
            super::reopen_container_log::handle(self, request.into_inner()),
        )
        .await
    }

    async fn exec_sync(
        &self,
        request: Request<api::ExecSyncRequest>,
    ) -> Result<Response<api::ExecSyncResponse>, Status> {
        rpc::serve(
            "ExecSync",
            Kind::Mutation,
            super::exec_sync::handle(self, request.into_inner()),
        )
        .await
    }

    async fn runtime_config(
        &self,
        request: Request<api::RuntimeConfigRequest>,
    ) -> Result<Response<api::RuntimeConfigResponse>, Status> {
        rpc::serve(
            "RuntimeConfig",
            Kind::Query,
            super::runtime_config::handle(self, request.into_inner()),
        )
        .await
    }

    async fn update_runtime_config(
        &self,
        request: Request<api::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<api::UpdateRuntimeConfigResponse>, Status> {
        rpc::serve(
            "UpdateRuntimeConfig",
            Kind::Mutation,
            super::update_runtime_config::handle(self, request.into_inner()),
        )
        .await
    }

    async fn container_stats(
        &self,
        request: Request<api::ContainerStatsRequest>,
    ) -> Result<Response<api::ContainerStatsResponse>, Status> {
        rpc::serve(
            "ContainerStats",
            Kind::Query,
            super::container_stats::handle(self, request.into_inner()),
        )
        .await
    }

    async fn list_container_stats(
        &self,
        request: Request<api::ListContainerStatsRequest>,
    ) -> Result<Response<api::ListContainerStatsResponse>, Status> {
        rpc::serve(
            "ListContainerStats",
            Kind::Query,
            super::list_container_stats::handle(self, request.into_inner()),
        )
        .await
    }

    async fn exec(
        &self,
        request: Request<api::ExecRequest>,
    ) -> Result<Response<api::ExecResponse>, Status> {
        rpc::serve(
            "Exec",
            Kind::Mutation,
            super::streaming_request::exec(self, request.into_inner()),
        )
        .await
    }

    async fn attach(
        &self,
        request: Request<api::AttachRequest>,
    ) -> Result<Response<api::AttachResponse>, Status> {
        rpc::serve(
            "Attach",
            Kind::Mutation,
            super::streaming_request::attach(self, request.into_inner()),
        )
        .await
    }

    async fn port_forward(
        &self,
        request: Request<api::PortForwardRequest>,
    ) -> Result<Response<api::PortForwardResponse>, Status> {
        rpc::serve(
            "PortForward",
            Kind::Mutation,
            super::streaming_request::port_forward(self, request.into_inner()),
        )
        .await
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<api::PodSandboxStatsRequest>,
    ) -> Result<Response<api::PodSandboxStatsResponse>, Status> {
        rpc::serve(
            "PodSandboxStats",
            Kind::Query,
            super::pod_sandbox_stats::handle(self, request.into_inner()),
        )
        .await
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<api::ListPodSandboxStatsRequest>,
    ) -> Result<Response<api::ListPodSandboxStatsResponse>, Status> {
        rpc::serve(
            "ListPodSandboxStats",
            Kind::Query,
            super::list_pod_sandbox_stats::handle(self, request.into_inner()),
        )
        .await
    }

    async fn list_metric_descriptors(
        &self,
        request: Request<api::ListMetricDescriptorsRequest>,
    ) -> Result<Response<api::ListMetricDescriptorsResponse>, Status> {
        rpc::serve(
            "ListMetricDescriptors",
            Kind::Query,
            super::list_metric_descriptors::handle(request.into_inner()),
        )
        .await
    }

    async fn list_pod_sandbox_metrics(
        &self,
        request: Request<api::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<api::ListPodSandboxMetricsResponse>, Status> {
        rpc::serve(
            "ListPodSandboxMetrics",
            Kind::Query,
            super::list_pod_sandbox_metrics::handle(self, request.into_inner()),
        )
        .await
    }

    async fn checkpoint_container(
        &self,
        request: Request<api::CheckpointContainerRequest>,
    ) -> Result<Response<api::CheckpointContainerResponse>, Status> {
        rpc::serve(
            "CheckpointContainer",
            Kind::Mutation,
            super::checkpoint_container::handle(request.into_inner()),
        )
        .await
    }

    async fn checkpoint_pod(
        &self,
        request: Request<api::CheckpointPodRequest>,
    ) -> Result<Response<api::CheckpointPodResponse>, Status> {
        rpc::serve(
            "CheckpointPod",
            Kind::Mutation,
            super::checkpoint_pod::handle(request.into_inner()),
        )
        .await
    }

    async fn restore_pod(
        &self,
        request: Request<api::RestorePodRequest>,
    ) -> Result<Response<api::RestorePodResponse>, Status> {
        rpc::serve(
            "RestorePod",
            Kind::Mutation,
            super::restore_pod::handle(request.into_inner()),
        )
        .await
    }

    async fn update_pod_sandbox_resources(
        &self,
        request: Request<api::UpdatePodSandboxResourcesRequest>,
    ) -> Result<Response<api::UpdatePodSandboxResourcesResponse>, Status> {
        rpc::serve(
            "UpdatePodSandboxResources",
            Kind::Mutation,
            super::update_pod_sandbox_resources::handle(self, request.into_inner()),
        )
        .await
    }

    type StreamPodSandboxesStream = rpc::ServerStream<api::StreamPodSandboxesResponse>;

    async fn stream_pod_sandboxes(
        &self,
        request: Request<api::StreamPodSandboxesRequest>,
    ) -> Result<Response<Self::StreamPodSandboxesStream>, Status> {
        rpc::serve(
            "StreamPodSandboxes",
            Kind::Query,
            super::stream_pod_sandboxes::handle(self, request.into_inner()),
        )
        .await
    }

    type StreamContainersStream = rpc::ServerStream<api::StreamContainersResponse>;

    async fn stream_containers(
        &self,
        request: Request<api::StreamContainersRequest>,
    ) -> Result<Response<Self::StreamContainersStream>, Status> {
        rpc::serve(
            "StreamContainers",
            Kind::Query,
            super::stream_containers::handle(self, request.into_inner()),
        )
        .await
    }

    type StreamContainerStatsStream = rpc::ServerStream<api::StreamContainerStatsResponse>;

    async fn stream_container_stats(
        &self,
        request: Request<api::StreamContainerStatsRequest>,
    ) -> Result<Response<Self::StreamContainerStatsStream>, Status> {
        rpc::serve(
            "StreamContainerStats",
            Kind::Query,
            super::stream_container_stats::handle(self, request.into_inner()),
        )
        .await
    }

    type StreamPodSandboxStatsStream = rpc::ServerStream<api::StreamPodSandboxStatsResponse>;

    async fn stream_pod_sandbox_stats(
        &self,
        request: Request<api::StreamPodSandboxStatsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxStatsStream>, Status> {
        rpc::serve(
            "StreamPodSandboxStats",
            Kind::Query,
            super::stream_pod_sandbox_stats::handle(self, request.into_inner()),
        )
        .await
    }

    type StreamPodSandboxMetricsStream = rpc::ServerStream<api::StreamPodSandboxMetricsResponse>;

    async fn stream_pod_sandbox_metrics(
        &self,
        request: Request<api::StreamPodSandboxMetricsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxMetricsStream>, Status> {
        rpc::serve(
            "StreamPodSandboxMetrics",
            Kind::Query,
            super::stream_pod_sandbox_metrics::handle(self, request.into_inner()),
        )
        .await
    }

    type GetContainerEventsStream = rpc::ServerStream<api::ContainerEventResponse>;

    async fn get_container_events(
        &self,
        request: Request<api::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        rpc::serve(
            "GetContainerEvents",
            Kind::Query,
            super::get_container_events::handle(self, request.into_inner()),
        )
        .await
    }
}
