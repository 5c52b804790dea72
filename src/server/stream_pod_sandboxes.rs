//! `StreamPodSandboxes`: `ListPodSandbox`'s pods in bounded-size messages.

use tonic::Status;

use super::CriServer;
use super::rpc::{self, ServerStream};
use crate::api;

pub async fn handle(
    server: &CriServer,
    request: api::StreamPodSandboxesRequest,
) -> Result<ServerStream<api::StreamPodSandboxesResponse>, Status> {
    let list = api::ListPodSandboxRequest {
        filter: request.filter,
    };
    let pods = super::list_pod_sandbox::handle(server, list).await?.items;
    Ok(rpc::stream_of(pods, |pod_sandboxes| {
        api::StreamPodSandboxesResponse { pod_sandboxes }
    }))
}
